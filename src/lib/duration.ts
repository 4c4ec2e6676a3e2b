/** Seconds as people read a duration, the same in `qrfleet status` and on /admin: "3d 4h", "2h 5m", "40s"; "-" for none. */
export function duration(seconds: number): string {
  if (seconds <= 0) return "-";
  const parts: Array<[number, string]> = [[Math.floor(seconds / 86_400), "d"], [Math.floor(seconds / 3_600) % 24, "h"], [Math.floor(seconds / 60) % 60, "m"], [seconds % 60, "s"]];
  const first = parts.findIndex(([n]) => n > 0);
  return parts.slice(first, first + 2).filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join(" ");
}
