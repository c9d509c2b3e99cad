"""Small string tasks written as instructions, for instruction tuning a character GPT.

Four tasks fit a 64-character context with room to spare:

* ``upper``: ``"qxb"`` -> ``"QXB"``;
* ``copy``: ``"qxb"`` -> ``"qxb"``;
* ``title``: ``"qxb"`` -> ``"Qxb"``;
* ``spell``: ``"7"`` -> ``"seven"`` (the digits 0 to 9).

The three letter tasks take the same kind of input, three random lower-case letters, so
only the instruction says which one is wanted; ``spell`` is the only task on a number, so
its input alone gives it away. A model fine-tuned on the same inputs and answers without
the instructions (the control) can therefore learn ``spell``, but on the letter tasks it
can only guess which task an example belongs to: the three answers to one input always
differ, so whatever it writes is right for at most one of them, and its accuracy averaged
over the three is at most 1/3.

An instruction is a **frame** around a **keyword**: ``"pls {k}"`` with ``"caps"`` gives
``"pls caps"``. Every task has two keywords and five frames, so ten phrasings. For each
task three phrasings are held out of training, chosen so that each keyword and each frame
still occurs in training for that task, only never together: a held-out phrasing is a new
string made of known parts. Every task also has a **new word**, a keyword that never occurs
in fine-tuning, to test whether the model can follow an instruction it was never taught.

An example is laid out at fixed character positions: the instruction right-aligned in a
field of :data:`INSTRUCTION_WIDTH` characters, then ``">"`` and the input, then ``">"``
and the answer, which a newline ends::

       pls caps >qxb
    >QXB

The control sees the same lines with the instruction blanked out (spaces), so both models
read their inputs and write their answers at the same places. The prompt is everything up
to the second ``">"``. The same mark before the input and before the answer lets the
pre-trained model's copying (an induction head finds what followed the earlier ``">"``)
serve all three letter tasks.

Letter inputs are split by a hash of the string: one string in ten is kept for
evaluation and never drawn for training.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genai_report.data.transduction import spell

LETTERS = string.ascii_lowercase
INPUT_WIDTH = 3
"""Characters of every input (three letters, or a digit padded with spaces)."""


def is_eval_string(x: str) -> bool:
    """Whether a letter string is reserved for evaluation (one in ten, by a fixed hash)."""
    return sum((i + 3) * ord(c) for i, c in enumerate(x)) % 10 == 0


def _letters(g: torch.Generator, held_out: bool = False) -> str:
    while True:
        x = "".join(LETTERS[i] for i in torch.randint(26, (INPUT_WIDTH,), generator=g).tolist())
        if is_eval_string(x) == held_out:
            return x


NUMBERS = tuple(str(i) for i in range(10))
"""The inputs of the number task (too few to hold any out)."""


def _number(g: torch.Generator, held_out: bool = False) -> str:
    return NUMBERS[int(torch.randint(len(NUMBERS), (1,), generator=g))]


@dataclass(frozen=True)
class Task:
    """One string task.

    Attributes:
        name: short identifier.
        keywords: two words that name the task in the training instructions.
        new_word: a word that names the task but never occurs in fine-tuning.
        draw: ``draw(generator, held_out=False)`` draws an input (from the evaluation
            strings when ``held_out``, from the training strings otherwise).
        solve: maps an input to its answer.
        kind: ``"letters"`` or ``"number"``: the form of the input.
    """

    name: str
    keywords: tuple[str, str]
    new_word: str
    draw: Callable[..., str]
    solve: Callable[[str], str]
    kind: str


def _copy(x: str) -> str:
    return x


def _spell(x: str) -> str:
    return " ".join(spell(int(x)))


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("upper", ("upper", "caps"), "shout", _letters, str.upper, "letters"),
    Task("copy", ("copy", "echo"), "same", _letters, _copy, "letters"),
    Task("title", ("title", "proper"), "headline", _letters, str.capitalize, "letters"),
    Task("spell", ("spell", "say"), "words", _number, _spell, "number"),
)}
FRAMES = ("{k}", "pls {k}", "now {k}", "just {k}", "then {k}")
SPLITS = ("seen", "held_out", "new_word")
"""Evaluation splits: training phrasings, held-out phrasings, and the never-seen word."""
INSTRUCTION_WIDTH = max(len(f.format(k=k)) for t in TASKS.values() for k in t.keywords
                        for f in FRAMES)
"""Width of the (right-aligned) instruction field."""


def blind_loss_floor() -> float:
    """The lowest training loss a model that cannot see the instruction can reach.

    On a letter example the input leaves the task uniformly uncertain among the letter
    tasks, and each task gives a different answer, so the best such model still pays
    ``ln(number of letter tasks)`` nats per letter example; number examples cost nothing.
    The fine-tuning loss is a mean over answer characters (stop included), so the floor is
    that cost divided by the expected number of answer characters per example, with the
    task drawn uniformly as in :func:`draw_examples`.

    Returns:
        The floor in nats per answer character.
    """
    import math

    n = len(TASKS)
    letters = [t for t in TASKS.values() if t.kind == "letters"]
    chars = 0.0
    for t in TASKS.values():
        inputs = ["a" * INPUT_WIDTH] if t.kind == "letters" else list(NUMBERS)
        chars += sum(len(t.solve(x)) + 1 for x in inputs) / len(inputs) / n
    return len(letters) / n * math.log(len(letters)) / chars


def check_task(name: str) -> Task:
    """The task called ``name``; a ``ValueError`` lists the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; valid tasks are {sorted(TASKS)}.")
    return TASKS[name]


def phrasings(name: str) -> dict[str, list[str]]:
    """The instructions of a task, by split.

    For task number ``t`` (its place in :data:`TASKS`), the held-out phrasings are keyword 0
    in frame ``t``, and keyword 1 in frames ``t + 2`` and ``t + 4`` (modulo 5): every
    keyword and every frame keeps at least one training phrasing.

    Args:
        name: a key of :data:`TASKS`.

    Returns:
        ``{"seen": [7 phrasings], "held_out": [3], "new_word": [the new word]}``.
    """
    task = check_task(name)
    t = list(TASKS).index(name)
    n = len(FRAMES)
    held = {(0, t % n), (1, (t + 2) % n), (1, (t + 4) % n)}
    out: dict[str, list[str]] = {"seen": [], "held_out": [], "new_word": [task.new_word]}
    for ki, k in enumerate(task.keywords):
        for fi, frame in enumerate(FRAMES):
            out["held_out" if (ki, fi) in held else "seen"].append(frame.format(k=k))
    return out


def prompt(x: str, instruction: str | None) -> str:
    """The prompt for input ``x``: instructed, or blanked (``instruction=None``).

    Args:
        x: the task input (at most :data:`INPUT_WIDTH` characters).
        instruction: the phrasing, or ``None`` for the control's prompt (spaces instead).

    Returns:
        ``"{instruction} >{x}\\n>"``, the instruction right-aligned and ``x`` left-aligned
        in fields of fixed width.
    """
    if len(x) > INPUT_WIDTH:
        raise ValueError(f"Input {x!r} is longer than INPUT_WIDTH={INPUT_WIDTH}.")
    words = instruction or ""
    if len(words) > INSTRUCTION_WIDTH:
        raise ValueError(f"Instruction {words!r} is longer than INSTRUCTION_WIDTH="
                         f"{INSTRUCTION_WIDTH}.")
    return f"{words:>{INSTRUCTION_WIDTH}} >{x:<{INPUT_WIDTH}}\n>"


@dataclass(frozen=True)
class Example:
    """One instruction example.

    Attributes:
        task: the task's name.
        instruction: the phrasing used.
        x: the input.
        answer: the correct answer (without the closing newline).
    """

    task: str
    instruction: str
    x: str
    answer: str

    def pair(self, instructed: bool = True) -> tuple[str, str]:
        """``(prompt, answer)`` with the instruction, or blanked for the control."""
        return prompt(self.x, self.instruction if instructed else None), self.answer


def draw_examples(n: int, generator: torch.Generator, tasks: tuple[str, ...] | None = None
                  ) -> list[Example]:
    """``n`` training examples: task, training phrasing and input drawn uniformly.

    The same generator state gives the same examples whether they are shown to the
    instructed model or blanked for the control, so both learn from one stream of data.

    Args:
        n: number of examples.
        generator: the source of every random choice.
        tasks: task names to mix (default: all of :data:`TASKS`).

    Returns:
        The examples (never an evaluation string).
    """
    names = tuple(tasks or TASKS)
    table = {name: phrasings(name)["seen"] for name in names}
    out = []
    for _ in range(n):
        name = names[int(torch.randint(len(names), (1,), generator=generator))]
        options = table[name]
        words = options[int(torch.randint(len(options), (1,), generator=generator))]
        x = TASKS[name].draw(generator, False)
        out.append(Example(name, words, x, TASKS[name].solve(x)))
    return out


def eval_examples(name: str, split: str, n: int, generator: torch.Generator
                  ) -> list[Example]:
    """``n`` examples of one task on evaluation inputs, cycling through ``split``'s phrasings.

    Args:
        name: the task.
        split: one of :data:`SPLITS`.
        n: number of examples.
        generator: draws the inputs.

    Returns:
        The examples.
    """
    task = check_task(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    options = phrasings(name)[split]
    out = []
    for i in range(n):
        x = task.draw(generator, True)
        out.append(Example(name, options[i % len(options)], x, task.solve(x)))
    return out


__all__ = ["TASKS", "FRAMES", "SPLITS", "INSTRUCTION_WIDTH", "INPUT_WIDTH", "LETTERS", "NUMBERS",
           "Task", "Example", "blind_loss_floor", "check_task", "is_eval_string", "phrasings",
           "prompt", "draw_examples", "eval_examples"]
