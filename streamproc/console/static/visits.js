// Visits page: fills the browser's time zone into the filter, counts the selection, tells
// which collection is needed, and names visits without leaving the page. Without this
// script the forms still work as plain HTML posts.
import { PREFIX, csrfToken, el } from "./console.js";

const tz = document.getElementById("f-tz");
if (tz) tz.value = String(new Date().getTimezoneOffset());

const form = document.getElementById("name-form");
const picks = () => [...document.querySelectorAll('input.pick[name="visitor"]')];
const count = document.getElementById("n-count");
const collection = document.getElementById("n-collection");
const submit = document.getElementById("n-submit");
let perStream = {};
try { perStream = JSON.parse(collection?.dataset.perStream || "{}"); } catch { perStream = {}; }

// The selected visits' streams decide whether a collection must be chosen.
function update() {
  const chosen = picks().filter((p) => p.checked);
  if (count) count.textContent = chosen.length ? `${chosen.length} selected` : "Select visits below";
  if (submit) submit.disabled = chosen.length === 0;
  for (const p of picks()) p.closest(".visit")?.classList.toggle("selected", p.checked);
  if (!collection) return;
  const streams = new Set(chosen.map((p) => p.closest(".visit")?.dataset.stream));
  const needsChoice = [...streams].some((s) => (perStream[s] || []).length !== 1);
  collection.required = needsChoice;
  collection.options[0].disabled = needsChoice;
  if (needsChoice && !collection.value && collection.options.length > 1) collection.selectedIndex = 1;
}
for (const p of picks()) p.addEventListener("change", update);
update();

function showResults(data) {
  let box = document.getElementById("results");
  if (!box) {
    box = el("section", { class: "results", id: "results", "aria-live": "polite" });
    form.before(box);
  }
  box.replaceChildren(el("h2", { text: "Naming" }));
  const list = el("ul");
  if (data.Error) list.append(el("li", { class: "error", text: data.Error }));
  for (const r of data.Results || []) {
    const ok = Boolean(r.FaceId);
    const text = ok
      ? `Visit ${r.VisitorId.slice(0, 8)}: named ${r.Name}, face ${r.FaceId} indexed in ${r.CollectionId}` +
        (r.DeletedFaceId ? `; the face indexed under the old name was deleted.` : ".") +
        (r.Warning ? ` ${r.Warning}` : "")
      : `Visit ${r.VisitorId.slice(0, 8)}: ${r.Error}`;
    list.append(el("li", { class: ok ? "ok" : "error", "data-visitor": r.VisitorId, text }));
    if (!ok) continue;
    const card = document.querySelector(`.visit[data-visitor="${r.VisitorId}"]`);
    if (!card) continue;
    card.classList.remove("unknown");
    const who = card.querySelector(".who");
    if (who) who.replaceChildren(r.Name, " ", el("span", { class: "named-by", text: "named by you" }));
    const pick = card.querySelector("input.pick");
    if (pick) pick.checked = false;
  }
  box.append(list);
  box.scrollIntoView({ block: "nearest" });
  update();
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = picks().filter((p) => p.checked).map((p) => p.value);
  const body = JSON.stringify({
    VisitorIds: chosen,
    Name: form.elements.name.value.trim(),
    CollectionId: collection ? collection.value : "",
  });
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(`${PREFIX}/visits/name`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRF-Token": csrfToken() },
      body, credentials: "same-origin",
    });
    let data;
    try { data = await response.json(); } catch { data = { Error: `naming failed (${response.status})` }; }
    showResults(data);
  } catch (err) {
    showResults({ Error: String(err) });
  } finally {
    submit.removeAttribute("aria-busy");
    update();
  }
});
