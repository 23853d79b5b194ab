// Log in: POST /v1/session, then to ?next= or the page for the role.
import { $, flash, SITE } from "./common.js";

const HOME = SITE.home;  // each role's own page (api/layout.py)

function safeNext() {
  const next = new URLSearchParams(location.search).get("next");
  // Only paths on this site: never //host or a scheme.
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\")
    ? next : null;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = $("#login-submit");
  button.disabled = true;
  try {
    const res = await fetch("/v1/session", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: $("#username").value.trim(),
                             password: $("#password").value }),
    });
    if (!res.ok) {
      const wait = res.headers.get("retry-after");
      flash($("#flash"), res.status === 401 || res.status === 403
        ? "Wrong user name or password."
        : res.status === 429 ? `Too many attempts: try again in ${wait || "a few"} seconds.`
          : `Could not log in (HTTP ${res.status}).`, "error");
      return;
    }
    let role = null;
    try {
      const me = await fetch("/v1/session", { credentials: "same-origin" });
      if (me.ok) role = (await me.json()).role;
    } catch { /* go to next or the board */ }
    location.assign(safeNext() || HOME[role] || "/board");
  } catch (err) {
    flash($("#flash"), `Could not log in: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
});
