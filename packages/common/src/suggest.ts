/**
 * "Did you mean" for typed errors: which known names are close to a misspelled one, and the
 * phrase that says so.
 */

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prev2: number[] = new Array(m + 1).fill(0);
  let prev: number[] = Array.from({ length: m + 1 }, (_, j) => j);
  let cur: number[] = new Array(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, prev2[j - 2] + 1);
      }
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}

/**
 * Names from `candidates` close to `input` (case-insensitive): within an edit distance of
 * about a third of the name's length, or sharing a prefix of at least three characters.
 * Best first, at most `max`; a name equal to `input` but for case is the only suggestion.
 */
export function suggest(input: string, candidates: Iterable<string>, max = 3): string[] {
  const needle = input.toLowerCase();
  const scored: { name: string; score: number }[] = [];
  for (const name of candidates) {
    const hay = name.toLowerCase();
    if (hay === needle) return [name];
    const d = editDistance(needle, hay);
    const limit = Math.max(1, Math.floor(Math.max(needle.length, hay.length) / 3));
    if (d <= limit) scored.push({ name, score: d });
    else if (needle.length >= 3 && (hay.startsWith(needle) || needle.startsWith(hay))) {
      scored.push({ name, score: limit + 1 });
    }
  }
  scored.sort((x, y) => x.score - y.score || x.name.localeCompare(y.name));
  return scored.slice(0, max).map((s) => s.name);
}

/** " — did you mean 'x'?" / " — did you mean 'x' or 'y'?" or "" when nothing is close. */
export function didYouMean(suggestions: readonly string[]): string {
  if (suggestions.length === 0) return "";
  const quoted = suggestions.map((s) => `'${s}'`);
  const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
  return ` — did you mean ${list}?`;
}
