// The live page: server-sent events bring each new frame's number, boxes and names and each
// status change; the <img> loads that frame, and the boxes are drawn once it has loaded.

import { el } from "./console.js";

const SVG = "http://www.w3.org/2000/svg";
const root = document.getElementById("live");
const base = root.dataset.base;
const img = document.getElementById("live-img");
const overlay = document.getElementById("live-overlay");
const waiting = document.getElementById("live-waiting");
const statusEl = document.getElementById("live-status");
const reasonEl = document.getElementById("live-reason");
const nodeEl = document.getElementById("live-node");
const fpsEl = document.getElementById("live-fps");
const latencyEl = document.getElementById("live-latency");
const framesEl = document.getElementById("live-frames");
const facesEl = document.getElementById("live-faces");

let loading = null; // the frame event whose image is loading
let pending = null; // the newest frame event that arrived meanwhile

function label(face, searched) {
  if (face.name) return `${face.name} ${Math.round(face.similarity ?? 0)} %`;
  return searched ? "unknown" : "";
}

function drawBoxes(update) {
  overlay.setAttribute("viewBox", `0 0 ${update.width} ${update.height}`);
  overlay.replaceChildren();
  // Labels stay about 14 CSS pixels high whatever the image's displayed size.
  const scale = update.width / Math.max(1, img.clientWidth || update.width);
  for (const face of update.faces) {
    const { Left, Top, Width, Height } = face.box;
    const x = Left * update.width, y = Top * update.height;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", update.searched && !face.name ? "box unknown" : "box");
    rect.setAttribute("x", x);
    rect.setAttribute("y", y);
    rect.setAttribute("width", Width * update.width);
    rect.setAttribute("height", Height * update.height);
    overlay.append(rect);
    const text = label(face, update.searched);
    if (!text) continue;
    const size = 14 * scale;
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("class", "box-label");
    t.setAttribute("x", Math.max(0, x));
    t.setAttribute("y", y > size * 1.4 ? y - size * 0.35 : y + Height * update.height + size);
    t.style.fontSize = `${size}px`;
    t.style.strokeWidth = `${3 * scale}px`;
    t.textContent = text;
    overlay.append(t);
  }
  const names = update.faces.map((f) => label(f, update.searched) || "a face");
  facesEl.replaceChildren(
    ...(names.length ? names : ["Nobody."]).map((n) => el("li", { text: n, class: names.length ? "" : "empty" })),
  );
}

function load(update) {
  loading = update;
  img.src = `${base}/frame.jpg?n=${update.frame}`;
}

img.addEventListener("load", () => {
  img.hidden = false;
  waiting.hidden = true;
  if (loading) drawBoxes(loading);
  loading = null;
  if (pending) {
    const next = pending;
    pending = null;
    load(next);
  }
});

img.addEventListener("error", () => {
  loading = null; // the frame is gone (nobody watched for a moment): wait for the next one
  if (pending) {
    const next = pending;
    pending = null;
    load(next);
  }
});

function showState(update) {
  const status = String(update.status || "").toLowerCase();
  if (statusEl.textContent !== status) {
    statusEl.textContent = status;
    statusEl.className = `status status-${status}`;
  }
  reasonEl.textContent = update.reason && update.status !== "ONLINE" ? update.reason : "";
  // In a cluster, another node may run the camera: its live view is on that node's console.
  nodeEl.textContent = update.node ? `on node ${update.node}: its live view is on that node` : "";
  fpsEl.textContent = `${Number(update.fps || 0).toFixed(1)} fps`;
  latencyEl.textContent = update.latency_ms == null ? "–" : `${Math.round(update.latency_ms)} ms`;
  framesEl.textContent = String(update.frames ?? "");
  if (update.node) {
    waiting.hidden = false;
    waiting.textContent = `This camera runs on node ${update.node}: open that node's console to watch it.`;
  } else if (update.status === "STOPPED" || update.status === "OFFLINE") {
    waiting.hidden = false;
    waiting.textContent = update.status === "STOPPED" ? "The camera stopped." : "The camera is offline; reconnecting…";
  } else if (img.hidden) {
    waiting.textContent = "Waiting for the next analysed frame…";
  }
}

const source = new EventSource(`${base}/events`);
source.addEventListener("message", (message) => {
  const update = JSON.parse(message.data);
  showState(update);
  if (update.type !== "frame") return;
  if (loading) pending = update; // only the newest waits: a slow phone skips frames
  else load(update);
});
source.addEventListener("error", () => {
  if (source.readyState === EventSource.CLOSED) {
    reasonEl.textContent = "The live view stopped: reload the page (you may need to sign in again).";
  } else {
    reasonEl.textContent = "Connection lost; reconnecting…";
  }
});
