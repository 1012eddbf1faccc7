/** A rectangle in the picture's coordinates. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Squarified treemap layout (Bruls, Huizing, van Wijk, "Squarified Treemaps", 2000): items, in the
 * order given (largest first gives the best aspect ratios), fill `rect` with areas proportional to
 * their values. Deterministic: the same values give the same rectangles.
 */
export function squarify<T extends {value: number}>(items: readonly T[], rect: Rect): Array<{item: T; rect: Rect}> {
  const out: Array<{item: T; rect: Rect}> = [];
  const total = items.reduce((n, i) => n + Math.max(0, i.value), 0);
  if (total <= 0 || rect.w <= 0 || rect.h <= 0) return out;
  const scale = (rect.w * rect.h) / total;
  let free: Rect = {...rect};
  let row: Array<{item: T; area: number}> = [];
  const worst = (areas: number[], side: number): number => {
    const s = areas.reduce((a, b) => a + b, 0);
    const max = Math.max(...areas);
    const min = Math.min(...areas);
    return Math.max((side * side * max) / (s * s), (s * s) / (side * side * min));
  };
  const place = (): void => {
    const s = row.reduce((n, r) => n + r.area, 0);
    if (free.w >= free.h) {
      // A column at the left edge.
      const width = free.h > 0 ? s / free.h : 0;
      let y = free.y;
      for (const r of row) {
        const h = width > 0 ? r.area / width : 0;
        out.push({item: r.item, rect: {x: free.x, y, w: width, h}});
        y += h;
      }
      free = {x: free.x + width, y: free.y, w: Math.max(0, free.w - width), h: free.h};
    } else {
      const height = free.w > 0 ? s / free.w : 0;
      let x = free.x;
      for (const r of row) {
        const w = height > 0 ? r.area / height : 0;
        out.push({item: r.item, rect: {x, y: free.y, w, h: height}});
        x += w;
      }
      free = {x: free.x, y: free.y + height, w: free.w, h: Math.max(0, free.h - height)};
    }
    row = [];
  };
  for (const item of items) {
    if (item.value <= 0) continue;
    const area = item.value * scale;
    const side = Math.min(free.w, free.h);
    if (row.length === 0 || worst([...row.map((r) => r.area), area], side) <= worst(row.map((r) => r.area), side)) row.push({item, area});
    else {
      place();
      row.push({item, area});
    }
  }
  if (row.length > 0) place();
  return out;
}
