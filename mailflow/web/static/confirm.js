// Asks "確定…?" before a form marked data-confirm-submit is sent (shared-account registration, unbinding).
// A static file rather than an inline onsubmit, so the pages' CSP allows no inline script at all.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm-submit");
  if (question && !window.confirm(question)) { event.preventDefault(); }
});
