// Try it: send the chosen image(s) to an operation as the signed-in user and draw the
// answer on the image (an SVG over it, in the image's own pixels) beside the JSON.
import { PREFIX, callOperation, fileToBase64, el } from "./console.js";

const SVG = "http://www.w3.org/2000/svg";
const form = document.getElementById("tryit");
const run = document.getElementById("run");
const status = document.getElementById("status");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const figures = document.getElementById("figures");
const summary = document.getElementById("summary");
const responseBox = document.getElementById("response");
const files = { source: null, target: null };
const previewUrls = { source: null, target: null };
let figureUrls = [];

const operation = () => form.elements.operation.value;
const pct = (v) => (v == null ? "?" : `${Number(v).toFixed(1)} %`);
const clip = (v) => Math.min(1, Math.max(0, Number(v) || 0));

// -- choosing the operation and the images ------------------------------------------------

function showOperation(op, updateUrl) {
  for (const option of form.querySelectorAll(".option")) {
    option.hidden = !option.dataset.for.split(" ").includes(op);
  }
  document.getElementById("drop-target").hidden = op !== "CompareFaces";
  document.getElementById("image-label").textContent =
    op === "CompareFaces" ? "Source image (the face to look for)" : "Image";
  run.textContent = `Run ${op}`;
  document.title = `Try ${op} · streamproc`;
  form.dataset.operation = op;
  if (updateUrl) history.replaceState(null, "", `${PREFIX}/try/${op}`);
}

function setFile(slot, file) {
  const preview = document.getElementById(slot === "source" ? "image-preview" : "target-preview");
  if (!file) { files[slot] = null; preview.hidden = true; return; }
  if (!/^image\//.test(file.type)) {
    showError("InvalidImageFormatException", `${file.name} is not an image (JPEG or PNG).`);
    return;
  }
  files[slot] = file;
  if (previewUrls[slot]) URL.revokeObjectURL(previewUrls[slot]);
  previewUrls[slot] = URL.createObjectURL(file);
  preview.src = previewUrls[slot];
  preview.alt = `Chosen: ${file.name}`;
  preview.hidden = false;
  hideError();
}

for (const drop of form.querySelectorAll(".drop")) {
  const slot = drop.dataset.slot;
  const input = drop.querySelector('input[type="file"]');
  input.addEventListener("change", () => setFile(slot, input.files[0] || null));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const dropped = event.dataTransfer.files;
    if (!dropped.length) return;
    try { input.files = dropped; } catch { /* older browsers: keep our own copy only */ }
    setFile(slot, dropped[0]);
  });
}

form.addEventListener("change", (event) => {
  if (event.target.name === "operation") showOperation(event.target.value, true);
});

// -- calling ------------------------------------------------------------------------------

function number(id) {
  const raw = document.getElementById(id).value.trim();
  return raw === "" ? undefined : Number(raw);
}

async function request(op) {
  const image = { Bytes: await fileToBase64(files.source) };
  switch (op) {
    case "DetectFaces":
      return { Image: image, Attributes: [document.getElementById("attributes").value] };
    case "CompareFaces": {
      const params = { SourceImage: image, TargetImage: { Bytes: await fileToBase64(files.target) } };
      const threshold = number("similarity");
      if (threshold !== undefined) params.SimilarityThreshold = threshold;
      return params;
    }
    case "DetectLabels":
    case "DetectModerationLabels": {
      const params = { Image: image };
      const minimum = number("min-confidence");
      if (minimum !== undefined) params.MinConfidence = minimum;
      return params;
    }
    default:
      return { Image: image };
  }
}

function showError(code, message) {
  errorBox.replaceChildren(el("strong", { class: "error-type", text: code }), `: ${message}`);
  errorBox.hidden = false;
}

function hideError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const op = operation();
  if (!files.source || (op === "CompareFaces" && !files.target)) {
    showError("InvalidParameterException",
      op === "CompareFaces" ? "Choose a source and a target image first." : "Choose an image first.");
    return;
  }
  hideError();
  run.disabled = true;
  result.setAttribute("aria-busy", "true");
  form.dataset.state = "running";
  status.textContent = `Running ${op}…`;
  const started = performance.now();
  try {
    const data = await callOperation(op, await request(op));
    responseBox.textContent = JSON.stringify(data, null, 2);
    await render(op, data);
    status.textContent = `${op} answered in ${Math.round(performance.now() - started)} ms.`;
    form.dataset.state = "done";
  } catch (err) {
    showError(err.code || "Error", err.message);
    responseBox.textContent = JSON.stringify(err.response || { Message: err.message }, null, 2);
    status.textContent = `${op} failed.`;
    form.dataset.state = "error";
  } finally {
    run.disabled = false;
    result.removeAttribute("aria-busy");
  }
});

// -- drawing ------------------------------------------------------------------------------

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// The image with an SVG of its own size over it; draw() calls use ratios of the image.
async function figure(file, caption) {
  const url = URL.createObjectURL(file);
  figureUrls.push(url);
  const img = el("img", { src: url, alt: caption });
  try { await img.decode(); } catch { /* drawn once it loads */ }
  const width = img.naturalWidth || 1;
  const height = img.naturalHeight || 1;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
    "aria-hidden": "true" });
  const node = el("figure", { class: "tryit-figure" },
    el("div", { class: "frame" }, img, svg), el("figcaption", { text: caption }));
  const size = Math.max(width, height);
  const fontSize = Math.max(10, size / 40);

  // A BoundingBox may reach past the image (< 0 or > 1): draw only what lies on it.
  function box(bb, kind, text) {
    if (!bb) return;
    const x0 = clip(bb.Left) * width;
    const y0 = clip(bb.Top) * height;
    const x1 = clip(Number(bb.Left) + Number(bb.Width)) * width;
    const y1 = clip(Number(bb.Top) + Number(bb.Height)) * height;
    if (x1 <= x0 || y1 <= y0) return;
    const rect = svgEl("rect", { class: `box ${kind}`, x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
    if (text) rect.append(Object.assign(svgEl("title", {}), { textContent: text }));
    svg.append(rect);
    if (text) {
      const above = y0 - fontSize * 0.3 > fontSize;
      svg.append(Object.assign(svgEl("text", {
        class: `tryit-label ${kind}`, x: x0 + 2, y: above ? y0 - fontSize * 0.3 : y0 + fontSize,
        "font-size": fontSize, "stroke-width": fontSize / 6,
      }), { textContent: text }));
    }
  }

  function dot(x, y, text) {
    if (x == null || y == null || x < 0 || x > 1 || y < 0 || y > 1) return;
    const circle = svgEl("circle", { class: "landmark", cx: x * width, cy: y * height,
      r: Math.max(1.5, size / 400) });
    if (text) circle.append(Object.assign(svgEl("title", {}), { textContent: text }));
    svg.append(circle);
  }

  return { node, box, dot };
}

function list(id, items, emptyText) {
  if (!items.length) return el("p", { class: "empty", id, text: emptyText });
  const ol = el("ol", { id, class: "tryit-list" });
  for (const item of items) ol.append(el("li", { text: item }));
  return ol;
}

function faceWords(face, i) {
  const words = [`Face ${i + 1}: ${pct(face.Confidence)} confidence`];
  if (face.AgeRange) words.push(`age ${face.AgeRange.Low}–${face.AgeRange.High}`);
  if (face.Gender) words.push(face.Gender.Value.toLowerCase());
  if (face.Emotions && face.Emotions.length) {
    const top = [...face.Emotions].sort((a, b) => b.Confidence - a.Confidence)[0];
    words.push(top.Type.toLowerCase());
  }
  if (face.Smile && face.Smile.Value) words.push("smiling");
  if (face.Eyeglasses && face.Eyeglasses.Value) words.push("glasses");
  if (face.Sunglasses && face.Sunglasses.Value) words.push("sunglasses");
  if (face.Landmarks) words.push(`${face.Landmarks.length} landmarks`);
  return words.join(", ");
}

async function render(op, data) {
  const previous = figureUrls;
  figureUrls = [];
  const parts = [];
  const shown = [];
  if (op === "DetectFaces") {
    const fig = await figure(files.source, "Your image with the detected faces");
    const faces = data.FaceDetails || [];
    faces.forEach((face, i) => {
      fig.box(face.BoundingBox, "face", String(i + 1));
      for (const mark of face.Landmarks || []) fig.dot(mark.X, mark.Y, mark.Type);
    });
    shown.push(fig.node);
    parts.push(el("p", { text: `${faces.length} face${faces.length === 1 ? "" : "s"} detected.` }),
      list("faces", faces.map(faceWords), "No faces."));
  } else if (op === "CompareFaces") {
    const source = await figure(files.source, "Source image: the face looked for");
    const target = await figure(files.target, "Target image: matches and other faces");
    if (data.SourceImageFace) source.box(data.SourceImageFace.BoundingBox, "source", "source");
    const matches = data.FaceMatches || [];
    matches.forEach((m) => target.box(m.Face && m.Face.BoundingBox, "match", pct(m.Similarity)));
    const unmatched = data.UnmatchedFaces || [];
    unmatched.forEach((f) => target.box(f.BoundingBox, "unmatched", ""));
    shown.push(source.node, target.node);
    const best = matches.length ? Math.max(...matches.map((m) => m.Similarity)) : null;
    parts.push(
      el("p", { id: "similarity-result", text: best == null
        ? "No face in the target matched above the threshold."
        : `Best match: ${pct(best)} similar.` }),
      list("matches", matches.map((m, i) => `Match ${i + 1}: ${pct(m.Similarity)} similar`), ""),
      el("p", { text: `${unmatched.length} other face${unmatched.length === 1 ? "" : "s"} in the target.` }),
    );
  } else if (op === "DetectLabels") {
    const fig = await figure(files.source, "Your image with the labels' instances");
    const labels = data.Labels || [];
    for (const label of labels) {
      for (const instance of label.Instances || []) {
        fig.box(instance.BoundingBox, "instance", `${label.Name} ${pct(instance.Confidence)}`);
      }
    }
    shown.push(fig.node);
    parts.push(list("labels", labels.map((l) => {
      const parents = (l.Parents || []).map((p) => p.Name);
      return `${l.Name}: ${pct(l.Confidence)}${parents.length ? ` (${parents.join(", ")})` : ""}`;
    }), "No labels above the minimum confidence."));
  } else if (op === "DetectModerationLabels") {
    const fig = await figure(files.source, "Your image");
    shown.push(fig.node);
    const labels = data.ModerationLabels || [];
    parts.push(list("moderation-labels", labels.map((l) =>
      `${l.Name}${l.ParentName ? ` (${l.ParentName})` : ""}: ${pct(l.Confidence)}`),
    "No moderation labels above the minimum confidence."));
  } else if (op === "RecognizeCelebrities") {
    const fig = await figure(files.source, "Your image with the recognised people");
    const celebrities = data.CelebrityFaces || [];
    celebrities.forEach((c) => fig.box(c.Face && c.Face.BoundingBox, "celebrity", c.Name));
    const unknown = data.UnrecognizedFaces || [];
    unknown.forEach((f) => fig.box(f.BoundingBox, "unrecognized", ""));
    shown.push(fig.node);
    parts.push(list("celebrities", celebrities.map((c) =>
      `${c.Name}: ${pct(c.MatchConfidence)} match`), "No well-known people recognised."),
    el("p", { text: `${unknown.length} face${unknown.length === 1 ? "" : "s"} not recognised.` }));
  }
  figures.replaceChildren(...shown);
  summary.replaceChildren(...parts);
  for (const url of previous) URL.revokeObjectURL(url);
}

showOperation(form.dataset.operation, false);
