// /dev/mailbox: each HTML mail's frame as tall as the mail, so nothing is cut off and no inner scroll bar
// appears; measured again when the window changes width (the mail reflows) or a closed mail is opened.
(function () {
  "use strict";
  function fit(frame) {
    var doc;
    try { doc = frame.contentDocument; } catch (e) { return; }  // not readable: keep the CSS height
    if (!doc || !doc.body || doc.URL === "about:blank") { return; }  // the mail is not there yet
    if (!frame.getClientRects().length) { return; }  // inside a closed mail: measured when it opens
    frame.style.height = "0px";  // measure the mail at this width, not at the frame's old height
    frame.getBoundingClientRect();  // lay the page out first, so the mail's own layout has the new size
    var height = Math.max(doc.documentElement.scrollHeight, doc.body.scrollHeight);
    frame.style.height = (height > 0 ? height + 2 : 480) + "px";
  }
  var frames = Array.prototype.slice.call(document.querySelectorAll("iframe.mail-html"));
  frames.forEach(function (frame) {
    frame.addEventListener("load", function () { fit(frame); });
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") { fit(frame); }
  });
  document.querySelectorAll("details.mail").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (!details.open) { return; }
      // after the opened mail has been laid out once
      window.requestAnimationFrame(function () { details.querySelectorAll("iframe.mail-html").forEach(fit); });
    });
  });
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { frames.forEach(fit); }, 100);
  });
})();
