// Asks whether the typed 帳號 is free as the clerk leaves the field (GET /api/account-availability), so a
// taken account id shows up at once instead of after 確定要送出申請?. Used by /register and
// /shared/register. Says nothing when it cannot tell (offline, too many checks): the server checks again
// when the form is sent.
(function () {
  "use strict";
  document.querySelectorAll("input[data-availability]").forEach(function (input) {
    var field = input.closest(".field");
    var error = field.querySelector(".error");
    var status = field.querySelector(".status");
    var shown = "";  // the refusal this script put into the error slot, taken back once typing goes on
    input.addEventListener("input", function () {
      if (status) { status.textContent = ""; }
      if (shown && error && error.textContent === shown) {
        error.textContent = "";
        field.classList.remove("invalid");
        input.removeAttribute("aria-invalid");
      }
      shown = "";
    });
    input.addEventListener("change", function () {
      var asked = input.value.replace(/^[ \u3000]+|[ \u3000]+$/g, "");
      if (!asked || (error && error.textContent)) { return; }  // empty, or already wrong by its rule
      var url = input.getAttribute("data-availability") + "?account=" + encodeURIComponent(asked);
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json().then(function (body) { return { status: response.status, body: body }; });
        })
        .then(function (answer) {
          if (input.value.replace(/^[ \u3000]+|[ \u3000]+$/g, "") !== asked) { return; }  // typed on since
          var taken = answer.body.errors && answer.body.errors.account;
          if (answer.status === 200 && status) {
            status.textContent = answer.body.message;
          } else if ((answer.status === 409 || answer.status === 422) && taken && error) {
            error.textContent = shown = taken;
            field.classList.add("invalid");
            input.setAttribute("aria-invalid", "true");
          }
        })
        .catch(function () { /* no answer: the submit is checked by the server anyway */ });
    });
  });
})();
