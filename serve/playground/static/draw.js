// Draws a model's answer over its image and lists it in words. The answer's shape decides what is drawn, not
// the model's name, so any family answering with these fields is shown: `detections` (boxes), `people`
// (OpenPose: keypoints and the limbs it found), `keypoints` (MoveNet: one pose), `captions` (im2txt), `regions`
// (DenseCap: boxes, each with its caption).

// Saturated hues that stand out on photos, far apart for neighbouring indexes (the golden angle); a class keeps
// its colour from frame to frame.
export const colorOf = (index) => `hsl(${Math.round(index * 137.508) % 360}, 90%, 45%)`;
// MoveNet answers keypoints only; these are the COCO skeleton's bones between them (by keypoint name).
const COCO_BONES = [
  ["left_ear", "left_eye"], ["right_ear", "right_eye"], ["left_eye", "nose"], ["right_eye", "nose"],
  ["left_shoulder", "right_shoulder"], ["left_shoulder", "left_elbow"], ["left_elbow", "left_wrist"],
  ["right_shoulder", "right_elbow"], ["right_elbow", "right_wrist"], ["left_shoulder", "left_hip"],
  ["right_shoulder", "right_hip"], ["left_hip", "right_hip"], ["left_hip", "left_knee"],
  ["left_knee", "left_ankle"], ["right_hip", "right_knee"], ["right_knee", "right_ankle"],
];
const MIN_KEYPOINT_SCORE = 0.2;

export function drawAnswer(ctx, result) {
  const line = Math.max(2, Math.round(ctx.canvas.width / 250));
  ctx.lineWidth = line;
  ctx.font = `${6 * line + 4}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  // Best first in the answer: drawn last, so overlapping boxes never hide the most likely ones.
  for (const d of [...(result.detections || [])].reverse()) drawBox(ctx, d, colorOf(d.class_id), line);
  (result.people || []).forEach((person, i) => drawPose(ctx, person.keypoints, person.limbs, colorOf(i), line));
  if (result.keypoints) drawPose(ctx, result.keypoints, COCO_BONES, colorOf(0), line);
  if (result.captions && result.captions.length) label(ctx, result.captions[0].text, 0, 0, "#000", line);
  // A region has no class: each gets its own colour by rank; best drawn last, as boxes above.
  const regions = result.regions || [];
  for (let i = regions.length - 1; i >= 0; i--) {
    const { box, caption } = regions[i];
    drawBox(ctx, { label: caption, box }, colorOf(i), line);
  }
}

function drawBox(ctx, { label: name, score, box }, color, line) {
  ctx.strokeStyle = color;
  ctx.strokeRect(box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1);
  label(ctx, score == null ? name : `${name} ${score.toFixed(2)}`, box.x1, box.y1, color, line);
}

function drawPose(ctx, keypoints, bones, color, line) {
  const seen = (name) => keypoints[name] && keypoints[name].score >= MIN_KEYPOINT_SCORE;
  ctx.strokeStyle = ctx.fillStyle = color;
  for (const [a, b] of bones) {
    if (!seen(a) || !seen(b)) continue;
    ctx.beginPath();
    ctx.moveTo(keypoints[a].x, keypoints[a].y);
    ctx.lineTo(keypoints[b].x, keypoints[b].y);
    ctx.stroke();
  }
  for (const name of Object.keys(keypoints).filter(seen)) {
    ctx.beginPath();
    ctx.arc(keypoints[name].x, keypoints[name].y, 1.5 * line, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function label(ctx, text, x, y, color, line) {
  const height = 6 * line + 8;
  ctx.fillStyle = color;
  ctx.fillRect(x, y, ctx.measureText(text).width + 2 * line, height);
  ctx.fillStyle = "#fff";
  ctx.fillText(text, x + line, y + 2);
}

// One line per thing found, with the colour it is drawn in: [{text, color}].
export function describeAnswer(result) {
  const lines = [];
  for (const d of result.detections || []) {
    lines.push({ text: `${d.label} ${d.score.toFixed(2)}`, color: colorOf(d.class_id) });
  }
  (result.people || []).forEach((p, i) => lines.push({
    text: `person ${i + 1}: ${p.part_count} parts, score ${p.score.toFixed(2)}`, color: colorOf(i) }));
  if (result.keypoints) {
    const found = Object.values(result.keypoints).filter((k) => k.score >= MIN_KEYPOINT_SCORE).length;
    lines.push({ text: `pose: ${found} of ${Object.keys(result.keypoints).length} keypoints`, color: colorOf(0) });
  }
  for (const c of result.captions || []) lines.push({ text: `${c.text} (log p ${c.log_prob.toFixed(2)})` });
  (result.regions || []).forEach((r, i) => lines.push({
    text: `${r.caption} (score ${r.score.toFixed(2)})`, color: colorOf(i) }));
  if (!lines.length) lines.push({ text: "nothing found" });
  return lines;
}
