// The do-not-call import: the API takes the CSV as a text/csv body, so the chosen file
// is sent as one, with the session's CSRF token in a header.
"use strict";

(function () {
  const form = document.getElementById("dnc-import");
  if (!form) return;
  const result = document.getElementById("dnc-import-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    result.textContent = "Importing…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Content-Type": "text/csv", "X-CSRF-Token": form.dataset.csrf },
        body: await file.text(),
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) {
        result.textContent = "Not imported: " + (body.message || response.status);
        return;
      }
      result.textContent = body.added + " added, " + body.duplicates + " already listed, " +
        body.invalid.length + " not valid numbers (of " + body.rows + " rows).";
    } catch (err) {
      result.textContent = "Not imported: the server could not be reached.";
    }
  });
})();

// Export and erasure requests go to the API as JSON; the page reloads to show their state.
(function () {
  const form = document.getElementById("privacy-request");
  if (!form) return;
  const result = document.getElementById("privacy-request-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { reason: data.get("reason") };
    if (data.get("phone")) body.phone = data.get("phone");
    if (data.get("email")) body.email = data.get("email");
    if (data.get("kind") === "erasures" &&
        !window.confirm("Erase everything held on this customer? This cannot be undone.")) {
      return;
    }
    result.textContent = "Sending…";
    try {
      const response = await fetch("/api/v1/" + data.get("kind"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (!response.ok) {
        result.textContent = "Not done: " + (answer.message || response.status);
        return;
      }
      window.location.reload();
    } catch (err) {
      result.textContent = "Not done: the server could not be reached.";
    }
  });
})();
