/* genai-report: click a figure to see it full size (a lightbox), Escape or a click closes it;
   "copy" copies a figure's reproduce command.
   No external script: the site makes no request off the host. */
(function () {
  "use strict";
  var box = null;

  function close() {
    if (!box) return;
    box.remove();
    box = null;
    document.documentElement.classList.remove("genai-lightbox-open");
  }

  function open(link) {
    // The image the reader sees: the light drawing or, under the dark scheme, its variant.
    var img = Array.prototype.find.call(link.querySelectorAll("img"), function (i) {
      return i.offsetParent !== null || getComputedStyle(i).display !== "none";
    }) || link.querySelector("img");
    if (!img) return;
    close();
    box = document.createElement("div");
    box.className = "genai-lightbox";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", img.alt || "Figure");
    var big = document.createElement("img");
    big.src = img.classList.contains("genai-dark") ? img.getAttribute("src") : link.getAttribute("href");
    big.alt = img.alt;
    if (img.classList.contains("genai-dark")) big.className = "genai-dark-variant";
    var caption = link.closest("figure") && link.closest("figure").querySelector("figcaption strong");
    var label = document.createElement("p");
    label.className = "genai-lightbox-caption";
    label.textContent = (caption ? caption.textContent + " " : "") + "Press Escape or click to close.";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "genai-lightbox-close";
    button.setAttribute("aria-label", "Close");
    button.textContent = "\u00d7";
    box.append(big, label, button);
    box.addEventListener("click", close);
    document.body.appendChild(box);
    document.documentElement.classList.add("genai-lightbox-open");
    button.focus();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.genai-figure-link");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    open(link);
  });
  // "copy" beside a figure's reproduce command.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.genai-copy");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () {
      button.classList.add("genai-copied");
      button.textContent = "copied";
      setTimeout(function () { button.classList.remove("genai-copied"); button.textContent = "copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {  // plain-HTTP previews: select the command so that Ctrl+C copies it
      var code = button.parentElement.querySelector(".genai-command");
      var range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      done();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });
})();
