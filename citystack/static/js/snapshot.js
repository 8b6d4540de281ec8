// A PNG of the map as drawn: the data canvases (points, bins, analysis overlays) at
// their place on a plain background, and the legends drawn beside them as text,
// colour bars and swatches. Map tiles are left out: they come from another host,
// and drawing them would forbid reading the picture back.

import {sequential} from './colours.js';

function drawLegend(ctx, legend, x, y) {
  const width = 220;
  const lines = [];
  for (const child of legend.children) {
    if (child.classList.contains('legend-bar')) lines.push({bar: true});
    else if (child.classList.contains('swatches')) {
      for (const li of child.querySelectorAll('li')) {
        const swatch = li.querySelector('.swatch');
        lines.push({swatch: swatch ? getComputedStyle(swatch).backgroundColor : '#999', text: li.textContent});
      }
    } else if (child.classList.contains('legend-labels')) {
      lines.push({text: [...child.children].map((c) => c.textContent).filter(Boolean).join('   ')});
    } else lines.push({text: child.textContent, bold: child.classList.contains('legend-title')});
  }
  const height = 12 + lines.length * 18;
  ctx.fillStyle = 'rgba(255,255,255,0.92)';
  ctx.fillRect(x, y - height, width, height);
  let at = y - height + 16;
  for (const line of lines) {
    if (line.bar) {
      for (let i = 0; i < width - 20; i++) {
        ctx.fillStyle = sequential(i / (width - 21));
        ctx.fillRect(x + 10 + i, at - 10, 1, 10);
      }
    } else {
      let left = x + 10;
      if (line.swatch) {
        ctx.fillStyle = line.swatch;
        ctx.fillRect(left, at - 10, 10, 10);
        left += 16;
      }
      ctx.fillStyle = '#1c2530';
      ctx.font = (line.bold ? '600 ' : '') + '12px sans-serif';
      ctx.fillText(line.text, left, at, width - (left - x) - 6);
    }
    at += 18;
  }
  return height;
}

export function mapPNG(mapElement, legends) {
  const box = mapElement.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  const out = document.createElement('canvas');
  out.width = Math.round(box.width * ratio);
  out.height = Math.round(box.height * ratio);
  const ctx = out.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.fillStyle = '#eef1f4';
  ctx.fillRect(0, 0, box.width, box.height);
  for (const canvas of mapElement.querySelectorAll('canvas')) {
    const r = canvas.getBoundingClientRect();
    if (r.width && r.height) ctx.drawImage(canvas, r.left - box.left, r.top - box.top, r.width, r.height);
  }
  let bottom = box.height - 24;
  for (const legend of legends) {
    if (legend.hidden || !legend.children.length) continue;
    bottom -= drawLegend(ctx, legend, box.width - 236, bottom) + 8;
  }
  return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
}
