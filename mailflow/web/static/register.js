/* The registration form's checks as you type: the same rules as mailflow/accounts/rules.py, with the
   messages and word lists that the server puts into #register-rules, so the wording never differs.
   Without JavaScript the form still submits and the server answers field by field. */
(function () {
  "use strict";
  var form = document.getElementById("register-form");
  var rulesNode = document.getElementById("register-rules");
  if (!form || !rulesNode) { return; }
  var R = JSON.parse(rulesNode.textContent);
  var M = R.messages;

  function msg(key, values) {
    return M[key].replace(/\{(\w+)\}/g, function (_, name) { return values && name in values ? values[name] : ""; });
  }
  var CONTROL = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]/u;
  var NAME_SEPARATORS = " ·‧・.-'";
  var LETTER = /^\p{L}$/u;
  var COMPANY_EN = new RegExp("(?<![A-Za-z])(?:" + R.companyWordsEn.join("|") + ")(?![A-Za-z])", "i");
  var WEIGHTS = [1, 2, 1, 2, 1, 2, 4, 1];

  function halfwidthDigits(v) {
    return v.replace(/[\uFF10-\uFF19]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xFF10 + 48); });
  }
  function phoneChars(v) {
    return halfwidthDigits(v).replace(/[－‐–]/g, "-").replace(/＃/g, "#").replace(/\u3000/g, " ");
  }
  function chars(v) { return Array.from(v); }

  // An office (or mobile) number as clerks type it; the same reading as mailflow/accounts/phones.py.
  var LOOKALIKES = { "－": "-", "‐": "-", "‑": "-", "–": "-", "—": "-", "＃": "#", "（": "(", "）": ")",
                     "　": " ", "＋": "+", "ｘ": "x", "Ｘ": "x" };
  function officePhoneError(v) {
    var text = halfwidthDigits(v).replace(/[－‐‑–—＃（）　＋ｘＸ]/g, function (c) { return LOOKALIKES[c]; })
      .replace(/^\s+|\s+$/g, "");
    var extension = "";
    var found = /\s*(?:#|轉|分機|ext\.?|x)\s*([0-9]+)\s*$/i.exec(text);
    if (found) { extension = found[1]; text = text.slice(0, found.index); }
    text = text.replace(/^\+\s*886\s*-?\s*(?:\(\s*0\s*\))?\s*-?\s*/, "0").replace(/^\s+|\s+$/g, "");
    if (!text || !/^(?:\(\s*[0-9]{1,4}\s*\))?[0-9 \-]*$/.test(text) || extension.length > 6) {
      return msg("company_phone");
    }
    var digits = text.replace(/[^0-9]/g, "");
    if (digits.slice(0, 2) === "09" && !extension) { return digits.length === 10 ? "" : msg("company_phone"); }
    var area = [4, 3, 2].map(function (n) { return digits.slice(0, n); })
      .filter(function (code) { return Object.prototype.hasOwnProperty.call(R.areaCodes, code); })[0];
    if (!area) { return msg("company_phone"); }
    var lengths = R.areaCodes[area];
    if (lengths.indexOf(digits.length - area.length) < 0) {
      return msg("company_phone_length", { area: area, lengths: lengths.join("或") });
    }
    return "";
  }

  function isPersonName(v) {
    var cs = chars(v);
    return cs.length >= 2 && LETTER.test(cs[0]) && cs.every(function (c) {
      return LETTER.test(c) || NAME_SEPARATORS.indexOf(c) >= 0;
    });
  }
  function looksLikeCompany(v) {
    return R.companyWordsZh.some(function (w) { return v.indexOf(w) >= 0; }) || COMPANY_EN.test(v);
  }
  function person(field) {
    return function (v) {
      if (!isPersonName(v)) { return msg(field); }
      return looksLikeCompany(v) ? msg(field + "_company") : "";
    };
  }
  function ubnChecksumOk(d) {
    if (!/^[0-9]{8}$/.test(d)) { return false; }
    var total = 0;
    for (var i = 0; i < 8; i++) {
      var p = Number(d[i]) * WEIGHTS[i];
      total += Math.floor(p / 10) + (p % 10);
    }
    return total % 5 === 0 || (d[6] === "7" && (total + 1) % 5 === 0);
  }

  var CHECKS = {
    account: function (v) { return /^[A-Za-z][A-Za-z0-9]{3,19}$/.test(v) ? "" : msg("account"); },
    name: person("name"),
    mobile: function (v) {
      return /^09[0-9]{8}$/.test(phoneChars(v).replace(/[ \-]/g, "")) ? "" : msg("mobile");
    },
    email: function (v) {
      // A close approximation of the server's check (mailflow/mail/addresses.py, which has the last word):
      // full-width characters read as ASCII, an ASCII name before the @, any letters in the domain.
      v = v.replace(/[\uFF01-\uFF5E]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xFEE0); });
      if (!/^[\x00-\x7F]*$/.test(v.slice(0, v.lastIndexOf("@") + 1))) { return msg("email_local_ascii"); }
      return /^[A-Za-z0-9.!#$%&'*+\/=?^_`{|}~-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)+$/u.test(v)
        && v.indexOf("..") < 0 && v[0] !== "." && v.split("@")[0].slice(-1) !== "."
        && !/=\?.*\?=/.test(v.split("@")[0]) ? "" : msg("email");
    },
    password: function (v) {
      var strong = chars(v).length >= 8 && /[A-Z]/.test(v) && /[a-z]/.test(v) && /[0-9]/.test(v);
      if (!strong) { return msg("password"); }
      var account = form.elements.account.value.replace(/^[ \u3000]+|[ \u3000]+$/g, "");
      if (account && !CHECKS.account(account) && v.toLowerCase().indexOf(account.toLowerCase()) >= 0) {
        return msg("password_account");
      }
      return "";
    },
    password_confirm: function (v) { return v === form.elements.password.value ? "" : msg("password_confirm"); },
    ubn: function (v) {
      var code = phoneChars(v).replace(/ /g, "");
      return ubnChecksumOk(code) || /^[0-9A-Z]{9}[A-Z]$/.test(code) ? "" : msg("ubn");
    },
    company_phone: officePhoneError,
    company_name: function (v) { return chars(v).length >= 2 ? "" : msg("company_name"); },
    company_address: function (v) {
      var country = "(?:(?:中華民國)?[台臺]灣省?[ \u3000]*)?";
      var re = new RegExp("^" + country + "(?:[0-9]{3}|[0-9]{5}|[0-9]{6})?[ \u3000]*" + country +
                          "[\u3400-\u9fff]{2,3}[縣市].*?[0-9]+(?:[-之][0-9]+)?號.*$", "u");
      return re.test(halfwidthDigits(v)) ? "" : msg("company_address");
    },
    company_owner: person("company_owner")
  };
  var UNTRIMMED = { password: true, password_confirm: true };

  function checkText(name) {
    var label = R.labels[name];
    var v = form.elements[name].value;
    if (!UNTRIMMED[name]) { v = v.replace(/^[ \u3000]+|[ \u3000]+$/g, ""); }
    if (v === "") { return msg("required", { label: label }); }
    if (CONTROL.test(v)) { return msg("control", { label: label }); }
    if (chars(v).length > R.maxLength[name]) { return msg("too_long", { label: label, max: R.maxLength[name] }); }
    return CHECKS[name](v);
  }

  function startsWith(bytes, signature) {
    return signature.every(function (b, i) { return bytes[i] === b; });
  }
  var SIGNATURES = [[0x25, 0x50, 0x44, 0x46, 0x2D], [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]];

  // The document is judged by its first bytes, as the server does; the input keeps only the last choice.
  function checkDocument() {
    var input = form.elements.document;
    var file = input.files && input.files.length ? input.files[input.files.length - 1] : null;
    if (!file || file.size === 0) { return Promise.resolve(msg("document")); }
    if (input.files.length > 1) { return Promise.resolve(msg("document_many")); }
    if (file.size > R.maxDocumentBytes) { return Promise.resolve(msg("document_too_large", { size: R.maxDocumentSize })); }
    if (!file.slice(0, 8).arrayBuffer) { return Promise.resolve(""); }
    return file.slice(0, 8).arrayBuffer().then(function (buffer) {
      var bytes = Array.from(new Uint8Array(buffer));
      return SIGNATURES.some(function (s) { return startsWith(bytes, s); }) ? "" : msg("document_type");
    }, function () { return ""; });
  }

  function show(name, error) {
    var input = form.elements[name];
    var box = input.closest(".field");
    document.getElementById(name + "-error").textContent = error;
    box.classList.toggle("invalid", !!error);
    if (error) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    return !error;
  }

  var textFields = Object.keys(CHECKS);
  var touched = {};
  textFields.forEach(function (name) {
    var input = form.elements[name];
    input.addEventListener("input", function () {
      touched[name] = true;
      show(name, checkText(name));
      // Fields whose rule reads another field follow its changes.
      if (name === "password" && touched.password_confirm) { show("password_confirm", checkText("password_confirm")); }
      if (name === "account" && touched.password) { show("password", checkText("password")); }
    });
    input.addEventListener("blur", function () {
      if (input.value !== "" || touched[name]) { touched[name] = true; show(name, checkText(name)); }
    });
  });
  form.elements.document.addEventListener("change", function () {
    checkDocument().then(function (error) { show("document", error); });
  });

  // The browser's own bubbles would hide our messages; the server still checks everything.
  form.setAttribute("novalidate", "");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var firstBad = null;
    textFields.forEach(function (name) {
      touched[name] = true;
      if (!show(name, checkText(name)) && !firstBad) { firstBad = form.elements[name]; }
    });
    checkDocument().then(function (error) {
      if (!show("document", error) && !firstBad) { firstBad = form.elements.document; }
      if (firstBad) { firstBad.focus(); return; }
      if (window.confirm(form.getAttribute("data-confirm"))) { form.submit(); }
    });
  });
})();
