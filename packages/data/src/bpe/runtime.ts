/**
 * The byte-level BPE encoder behind `loadHfTokenizer`, written as ONE self-contained function:
 * `bpeRuntime` references nothing outside its own body (no imports, no module-level helpers), so
 * its source text (`bpeRuntime.toString()`) can be evaluated as is in a worker thread (the Node
 * pool in `./pool.ts`) or a Web Worker, and the main thread runs the very same code. Types are
 * declared outside (they are erased). Keep it that way: a helper added outside this function
 * would be missing in the workers.
 *
 * What it implements, following Hugging Face `tokenizers` for `model.type: "BPE"` with a
 * ByteLevel pre-tokenizer (GPT-2, GPT-NeoX/Pythia, cl100k/Llama-3 style `tokenizer.json`):
 * added tokens split out first (leftmost-longest; `lstrip`, `rstrip`, `single_word`, `normalized`),
 * the normalizer (NFC/NFD/NFKC/NFKD/Lowercase/Sequence), the pre-tokenizer (`Split` regex with
 * every behaviour but Contiguous and with `invert`, then `ByteLevel` with `add_prefix_space` and
 * `use_regex`), then BPE merges by rank (lowest rank first, leftmost among equals), with
 * `ignore_merges`. Each pre-token's ids are cached (a typed-array hash table read in place), which is where the
 * speed comes from: most pre-tokens of a corpus were seen before.
 */

/** Reports a problem with the tokenizer.json: `field` is the JSON path of the offending value. */
export type BpeFail = (kind: "format" | "unsupported", field: string, message: string) => never;

/** The compiled tokenizer the runtime returns. */
export interface BpeCore {
  /** Largest id + 1 over the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** Encodes into a fresh typed array. */
  encode(text: string): Uint32Array;
  /** The id of a vocabulary or added token string, if any. */
  idOf(token: string): number | undefined;
  /** The token string of an id (vocabulary form, e.g. "Ġthe"), if any. */
  tokenOf(id: number): string | undefined;
  /** True for added tokens marked `special`. */
  isSpecial(id: number): boolean;
  /** The bytes an id stands for (added tokens: their content's UTF-8). */
  bytesOf(id: number): Uint8Array;
  /** Entries in the pre-token cache now. */
  cacheSize(): number;
  clearCache(): void;
}

export interface BpeCompileOptions {
  /** Pre-tokens the cache holds before it starts over (default 100 000). */
  cacheEntries?: number;
  /** Longest pre-token (UTF-16 units) that is cached (default 256). */
  cacheMaxLength?: number;
}

export interface BpeRuntime {
  compile(json: unknown, options: BpeCompileOptions, fail: BpeFail): BpeCore;
  /** Compiles a tokenizer.json regex (Oniguruma syntax) to a JavaScript RegExp with the same meaning. */
  translatePattern(pattern: string, field: string, fail: BpeFail): RegExp;
  /** GPT-2's pre-tokenizer pattern (what ByteLevel's `use_regex` splits with). */
  readonly gpt2Pattern: string;
  /** GPT-2's byte → printable character table used by ByteLevel. */
  byteToChar(): string[];
}

export function bpeRuntime(): BpeRuntime {
  // Unicode White_Space, which is what `\s` means in Oniguruma (the Rust library's regex engine);
  // JavaScript's `\s` differs (it has U+FEFF and lacks U+0085).
  const WS = "\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
  const gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  const wsRe = new RegExp(`[${WS}]`, "u");

  function byteToChar(): string[] {
    const out: string[] = [];
    let n = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      out[b] = String.fromCharCode(printable ? b : 256 + n++);
    }
    return out;
  }

  function isObj(v: unknown): v is Record<string, any> {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function translatePattern(pattern: string, field: string, fail: BpeFail): RegExp {
    let out = "";
    let inClass = false;
    let ci = 0; // depth of (?i: ...) groups we are inside
    const groups: boolean[] = []; // per open paren: does it start a (?i: group
    let lastQuant = false;
    const len = pattern.length;
    const fold = (c: string, cls: boolean): string => {
      const lo = c.toLowerCase();
      const up = c.toUpperCase();
      if (lo === up || lo.length !== 1 || up.length !== 1) return c;
      return cls ? lo + up : `[${lo}${up}]`;
    };
    for (let i = 0; i < len; i++) {
      const c = pattern[i];
      if (c === "\\") {
        const d = pattern[i + 1];
        if (d === undefined) fail("format", field, `regex ends with a lone backslash: ${pattern}`);
        if (d === "s") out += inClass ? WS : `[${WS}]`;
        else if (d === "S") {
          if (inClass) fail("unsupported", field, `\\S inside a character class is not supported: ${pattern}`);
          out += `[^${WS}]`;
        } else if ((d === "p" || d === "P") && pattern[i + 2] === "{") {
          const end = pattern.indexOf("}", i + 3);
          if (end < 0) fail("format", field, `unterminated \\${d}{ in regex: ${pattern}`);
          out += pattern.slice(i, end + 1);
          i = end - 1;
        } else if (d === "x" || d === "u") {
          const m = /^(?:x[0-9A-Fa-f]{2}|x\{[0-9A-Fa-f]+\}|u[0-9A-Fa-f]{4}|u\{[0-9A-Fa-f]+\})/.exec(pattern.slice(i + 1));
          if (!m) fail("format", field, `bad \\${d} escape in regex: ${pattern}`);
          const hex = m[0].replace(/^[xu]\{?|\}$/g, "");
          out += `\\u{${hex}}`;
          i += m[0].length - 1;
        } else if (d === "A" || d === "z" || d === "Z" || d === "G" || d === "h" || d === "H" || d === "R" || d === "X" || d === "K") {
          fail("unsupported", field, `\\${d} in a tokenizer regex is not supported: ${pattern}`);
        } else out += c + d;
        i++;
        lastQuant = false;
        continue;
      }
      if (inClass) {
        if (c === "]") inClass = false;
        if (c === "[") fail("unsupported", field, `nested character classes are not supported: ${pattern}`);
        out += ci > 0 ? fold(c, true) : c;
        continue;
      }
      if (c === "[") {
        inClass = true;
        out += c;
        if (pattern[i + 1] === "^") {
          out += "^";
          i++;
        }
        lastQuant = false;
        continue;
      }
      if (c === "(") {
        if (pattern.startsWith("(?i:", i)) {
          groups.push(true);
          ci++;
          out += "(?:";
          i += 3;
        } else if (pattern.startsWith("(?>", i) || /^\(\?[imsx-]+[:)]/.test(pattern.slice(i))) {
          fail("unsupported", field, `atomic groups and inline flags other than (?i:...) are not supported: ${pattern}`);
        } else {
          groups.push(false);
          out += c;
        }
        lastQuant = false;
        continue;
      }
      if (c === ")") {
        if (groups.length === 0) fail("format", field, `unbalanced ')' in regex: ${pattern}`);
        if (groups.pop()) ci--;
        out += c;
        lastQuant = false;
        continue;
      }
      if (c === "+" && lastQuant) fail("unsupported", field, `possessive quantifiers (e.g. '++', '?+') are not supported: ${pattern}`);
      if (c === "*" || c === "+" || c === "?") {
        // A '?' straight after a quantifier makes it lazy (JavaScript knows that form).
        lastQuant = !(c === "?" && lastQuant);
        out += c;
        continue;
      }
      if (c === "{") {
        const m = /^\{\d+(?:,\d*)?\}/.exec(pattern.slice(i));
        if (m) {
          out += m[0];
          i += m[0].length - 1;
          lastQuant = true;
          continue;
        }
      }
      lastQuant = false;
      out += ci > 0 ? fold(c, false) : c;
    }
    if (inClass || groups.length) fail("format", field, `unbalanced '[' or '(' in regex: ${pattern}`);
    try {
      return new RegExp(out, "gu");
    } catch (e) {
      return fail("format", field, `not a valid regex (${(e as Error).message}): ${pattern}`);
    }
  }

  function escapeRe(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }

  /** Receives the piece `s.slice(st, en)` (passed as a range so the last step need not copy it). */
  type Sink = (s: string, st: number, en: number) => void;

  function compile(json: unknown, options: BpeCompileOptions, fail: BpeFail): BpeCore {
    if (!isObj(json)) return fail("format", "(root)", "a tokenizer.json must be a JSON object");
    const model = json.model;
    if (!isObj(model)) return fail("format", "model", "missing 'model' object");
    if (model.type !== undefined && model.type !== "BPE") {
      fail(
        "unsupported",
        "model.type",
        `model type '${String(model.type)}' is not supported; supported: byte-level BPE (model.type "BPE" with a ByteLevel pre-tokenizer, as GPT-2, GPT-NeoX/Pythia, cl100k)`,
      );
    }
    if (model.type === undefined && !("merges" in model)) {
      fail("unsupported", "model.type", 'model has no type and no merges; supported: byte-level BPE (model.type "BPE")');
    }
    if (typeof model.dropout === "number" && model.dropout > 0)
      fail("unsupported", "model.dropout", "BPE dropout is a training-time randomisation; set it to null");
    for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
      if (typeof model[k] === "string" && model[k] !== "")
        fail("unsupported", `model.${k}`, `'${model[k]}' is not supported by a byte-level BPE (use "" or null)`);
    }
    const vocabJson = model.vocab;
    if (!isObj(vocabJson)) return fail("format", "model.vocab", "expected an object mapping token strings to ids");
    const vocab = new Map<string, number>();
    const idToToken: string[] = [];
    let maxId = -1;
    for (const tok of Object.keys(vocabJson)) {
      const id = vocabJson[tok];
      if (!Number.isInteger(id) || id < 0 || id >= 2 ** 31)
        fail("format", `model.vocab[${JSON.stringify(tok)}]`, `expected a non-negative integer id, got ${JSON.stringify(id)}`);
      vocab.set(tok, id);
      idToToken[id] = tok;
      if (id > maxId) maxId = id;
    }
    const b2c = byteToChar();
    const byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(b2c[b]);
      if (id === undefined) {
        fail(
          "format",
          "model.vocab",
          `lacks the byte-level symbol ${JSON.stringify(b2c[b])} of byte 0x${b.toString(16).padStart(2, "0")}; a byte-level BPE needs all 256`,
        );
      }
      byteIds[b] = id as number;
    }
    const c2b = new Map<string, number>();
    for (let b = 0; b < 256; b++) c2b.set(b2c[b], b);

    // Merges: (left id, right id) -> rank in an open-addressing table; mergedId[rank] = the new id.
    const merges = model.merges;
    if (!Array.isArray(merges)) return fail("format", "model.merges", 'expected an array of merges ("a b" strings or [a, b] pairs)');
    const M = merges.length;
    let cap = 16;
    while (cap < M * 2) cap *= 2;
    const mask = cap - 1;
    const tabA = new Int32Array(cap).fill(-1);
    const tabB = new Int32Array(cap);
    const tabR = new Int32Array(cap);
    const mergedId = new Int32Array(M);
    const slot = (a: number, b: number): number => {
      let h = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1);
      h ^= h >>> 15;
      let i = h & mask;
      while (tabA[i] !== -1 && (tabA[i] !== a || tabB[i] !== b)) i = (i + 1) & mask;
      return i;
    };
    for (let r = 0; r < M; r++) {
      const m = merges[r];
      let a: unknown;
      let b: unknown;
      if (typeof m === "string") {
        const parts = m.split(" ");
        if (parts.length !== 2) fail("format", `model.merges[${r}]`, `expected "left right" (one space), got ${JSON.stringify(m)}`);
        [a, b] = parts;
      } else if (Array.isArray(m) && m.length === 2) [a, b] = m;
      else fail("format", `model.merges[${r}]`, `expected "left right" or [left, right], got ${JSON.stringify(m)}`);
      if (typeof a !== "string" || typeof b !== "string") return fail("format", `model.merges[${r}]`, `merge parts must be strings, got ${JSON.stringify(m)}`);
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const im = vocab.get(a + b);
      if (ia === undefined || ib === undefined) fail("format", `model.merges[${r}]`, `merge ${JSON.stringify(m)} names a token missing from model.vocab`);
      if (im === undefined)
        fail("format", `model.merges[${r}]`, `the result ${JSON.stringify(a + b)} of merge ${JSON.stringify(m)} is missing from model.vocab`);
      const s = slot(ia as number, ib as number);
      tabA[s] = ia as number;
      tabB[s] = ib as number;
      tabR[s] = r; // a repeated pair keeps its last rank, as the Rust library's map does
      mergedId[r] = im as number;
    }
    const NONE = 0x7fffffff;
    const rankOf = (a: number, b: number): number => {
      let h = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1);
      h ^= h >>> 15;
      let i = h & mask;
      for (;;) {
        const ka = tabA[i];
        if (ka === -1) return NONE;
        if (ka === a && tabB[i] === b) return tabR[i];
        i = (i + 1) & mask;
      }
    };
    const ignoreMerges = model.ignore_merges === true;

    // Added tokens.
    interface Added {
      id: number;
      content: string;
      special: boolean;
      normalized: boolean;
      lstrip: boolean;
      rstrip: boolean;
      singleWord: boolean;
    }
    const addedJson = json.added_tokens ?? [];
    if (!Array.isArray(addedJson)) return fail("format", "added_tokens", "expected an array");
    const added: Added[] = [];
    const specialIds = new Set<number>();
    const addedById = new Map<number, string>();
    for (let i = 0; i < addedJson.length; i++) {
      const t = addedJson[i];
      if (!isObj(t) || typeof t.content !== "string" || t.content === "") fail("format", `added_tokens[${i}].content`, "expected a non-empty string");
      if (!Number.isInteger(t.id) || t.id < 0 || t.id >= 2 ** 31)
        fail("format", `added_tokens[${i}].id`, `expected a non-negative integer, got ${JSON.stringify(t.id)}`);
      const special = t.special === true;
      const a: Added = {
        id: t.id,
        content: t.content,
        special,
        normalized: typeof t.normalized === "boolean" ? t.normalized : !special,
        lstrip: t.lstrip === true,
        rstrip: t.rstrip === true,
        singleWord: t.single_word === true,
      };
      added.push(a);
      addedById.set(a.id, a.content);
      if (special) specialIds.add(a.id);
      if (a.id > maxId) maxId = a.id;
    }
    const addedByContent = new Map<string, Added>();
    for (const a of added) addedByContent.set(a.content, a);
    const addedRe = (normalized: boolean): RegExp | undefined => {
      const list = [...addedByContent.values()].filter((a) => a.normalized === normalized).map((a) => a.content);
      if (list.length === 0) return undefined;
      list.sort((x, y) => y.length - x.length || (x < y ? -1 : x > y ? 1 : 0));
      return new RegExp(list.map(escapeRe).join("|"), "gu");
    };
    const rawAddedRe = addedRe(false);
    const normAddedRe = addedRe(true);
    const isWordChar = (ch: string | undefined) => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);

    // Normalizer.
    const compileNormalizer = (n: unknown, field: string): ((s: string) => string) | undefined => {
      if (n === null || n === undefined) return undefined;
      if (!isObj(n)) return fail("format", field, "expected an object or null");
      switch (n.type) {
        case "NFC":
        case "NFD":
        case "NFKC":
        case "NFKD": {
          const form = n.type;
          return (s) => s.normalize(form);
        }
        case "Lowercase":
          return (s) => s.toLowerCase();
        case "Sequence": {
          if (!Array.isArray(n.normalizers)) return fail("format", `${field}.normalizers`, "expected an array");
          const fs = n.normalizers.map((x: unknown, i: number) => compileNormalizer(x, `${field}.normalizers[${i}]`)).filter(Boolean) as ((
            s: string,
          ) => string)[];
          if (fs.length === 0) return undefined;
          return (s) => {
            for (const f of fs) s = f(s);
            return s;
          };
        }
        default:
          return fail(
            "unsupported",
            `${field}.type`,
            `normalizer '${String(n.type)}' is not supported; supported: NFC, NFD, NFKC, NFKD, Lowercase, Sequence, or none`,
          );
      }
    };
    const normalize = compileNormalizer(json.normalizer, "normalizer");

    // Pre-tokenizer: a list of Split steps, then one ByteLevel.
    type Step = { kind: "split"; re: RegExp; behavior: string; invert: boolean } | { kind: "bytelevel"; prefix: boolean; useRegex: boolean };
    const steps: Step[] = [];
    const flatten = (p: unknown, field: string): void => {
      if (!isObj(p)) {
        fail("format", field, "expected a pre-tokenizer object");
        return;
      }
      if (p.type === "Sequence") {
        if (!Array.isArray(p.pretokenizers)) fail("format", `${field}.pretokenizers`, "expected an array");
        for (let i = 0; i < p.pretokenizers.length; i++) flatten(p.pretokenizers[i], `${field}.pretokenizers[${i}]`);
      } else if (p.type === "ByteLevel") {
        steps.push({ kind: "bytelevel", prefix: p.add_prefix_space === true, useRegex: p.use_regex !== false });
      } else if (p.type === "Split") {
        const pat = p.pattern;
        let re: RegExp;
        if (isObj(pat) && typeof pat.Regex === "string") re = translatePattern(pat.Regex, `${field}.pattern.Regex`, fail);
        else if (isObj(pat) && typeof pat.String === "string" && pat.String !== "") re = new RegExp(escapeRe(pat.String), "gu");
        else re = fail("format", `${field}.pattern`, 'expected { "Regex": "..." } or { "String": "..." }');
        const behavior = String(p.behavior);
        if (!["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext"].includes(behavior)) {
          fail(
            "unsupported",
            `${field}.behavior`,
            `Split behavior '${behavior}' is not supported; supported: Removed, Isolated, MergedWithPrevious, MergedWithNext`,
          );
        }
        steps.push({ kind: "split", re, behavior, invert: p.invert === true });
      } else {
        fail(
          "unsupported",
          `${field}.type`,
          `pre-tokenizer '${String(p.type)}' is not supported; supported: byte-level BPE pre-tokenizers (ByteLevel, or Split regexes followed by ByteLevel, in a Sequence)`,
        );
      }
    };
    if (json.pre_tokenizer === null || json.pre_tokenizer === undefined) {
      fail("unsupported", "pre_tokenizer", "no pre-tokenizer; supported: byte-level BPE (a ByteLevel pre-tokenizer, alone or after Split regexes)");
    }
    flatten(json.pre_tokenizer, "pre_tokenizer");
    const bl = steps.findIndex((s) => s.kind === "bytelevel");
    if (bl < 0 || bl !== steps.length - 1) {
      fail("unsupported", "pre_tokenizer", "supported: byte-level BPE, whose pre-tokenizer ends with exactly one ByteLevel (Split regexes may come before it)");
    }

    // ------------------------------------------------------------------------------------------
    // Encoding state: output buffer, scratch arrays, the cache.
    let out = new Uint32Array(1024);
    let outLen = 0;
    const grow = (extra: number) => {
      const n = new Uint32Array(Math.max(out.length * 2, outLen + extra));
      n.set(out.subarray(0, outLen));
      out = n;
    };
    const push = (id: number) => {
      if (outLen === out.length) grow(1);
      out[outLen++] = id;
    };
    const utf8 = new TextEncoder();
    let bytes = new Uint8Array(1024);
    let sym = new Int32Array(256);
    let rk = new Int32Array(256);
    // The pre-token cache: an open-addressing table over (hash of the pre-token's UTF-16 units);
    // each entry's key lives in `keyPool`, its ids in `valPool`. Lookups read the text in place
    // (no substring per pre-token). When `cacheEntries` entries are in, it starts over.
    const cacheEntries = Math.max(1, Math.floor(options.cacheEntries ?? 100_000));
    const cacheMaxLength = options.cacheMaxLength ?? 256;
    let tcap = 16;
    while (tcap < cacheEntries * 2) tcap *= 2;
    const tmask = tcap - 1;
    const slots = new Int32Array(tcap).fill(-1);
    const eHash = new Int32Array(cacheEntries);
    const eKeyOff = new Int32Array(cacheEntries);
    const eKeyLen = new Int32Array(cacheEntries);
    const eValOff = new Int32Array(cacheEntries);
    const eValLen = new Int32Array(cacheEntries);
    let keyPool = new Uint16Array(1 << 16);
    let valPool = new Uint32Array(1 << 14);
    let entries = 0;
    let keyUsed = 0;
    let valUsed = 0;
    const resetCache = () => {
      slots.fill(-1);
      entries = 0;
      keyUsed = 0;
      valUsed = 0;
    };

    // Merges `n` symbols in `sym` by rank; returns the new length.
    const mergeSmall = (n: number): number => {
      for (let i = 0; i < n - 1; i++) rk[i] = rankOf(sym[i], sym[i + 1]);
      while (n > 1) {
        let best = NONE;
        let bi = -1;
        for (let i = 0; i < n - 1; i++) {
          if (rk[i] < best) {
            best = rk[i];
            bi = i;
          }
        }
        if (bi < 0) break;
        sym[bi] = mergedId[best];
        for (let j = bi + 1; j < n - 1; j++) {
          sym[j] = sym[j + 1];
          rk[j] = rk[j + 1];
        }
        n--;
        if (bi > 0) rk[bi - 1] = rankOf(sym[bi - 1], sym[bi]);
        if (bi < n - 1) rk[bi] = rankOf(sym[bi], sym[bi + 1]);
      }
      return n;
    };
    // Same result for long words in O(n log n): linked symbols and a heap of (rank, position).
    const mergeLarge = (n: number): number => {
      const next = new Int32Array(n);
      const prev = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
      }
      let hr = new Int32Array(n);
      let hp = new Int32Array(n);
      let hs = 0;
      const less = (i: number, j: number) => hr[i] < hr[j] || (hr[i] === hr[j] && hp[i] < hp[j]);
      const swap = (i: number, j: number) => {
        const r = hr[i];
        hr[i] = hr[j];
        hr[j] = r;
        const p = hp[i];
        hp[i] = hp[j];
        hp[j] = p;
      };
      const hpush = (r: number, p: number) => {
        if (hs === hr.length) {
          const a = new Int32Array(hs * 2);
          a.set(hr);
          hr = a;
          const b = new Int32Array(hs * 2);
          b.set(hp);
          hp = b;
        }
        let i = hs++;
        hr[i] = r;
        hp[i] = p;
        while (i > 0) {
          const q = (i - 1) >> 1;
          if (!less(i, q)) break;
          swap(i, q);
          i = q;
        }
      };
      const hpop = () => {
        hs--;
        hr[0] = hr[hs];
        hp[0] = hp[hs];
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= hs) break;
          const c = l + 1 < hs && less(l + 1, l) ? l + 1 : l;
          if (!less(c, i)) break;
          swap(c, i);
          i = c;
        }
      };
      for (let i = 0; i < n - 1; i++) {
        const r = rankOf(sym[i], sym[i + 1]);
        if (r !== NONE) hpush(r, i);
      }
      while (hs > 0) {
        const r = hr[0];
        const p = hp[0];
        hpop();
        if (sym[p] < 0) continue;
        const q = next[p];
        if (q < 0 || rankOf(sym[p], sym[q]) !== r) continue;
        sym[p] = mergedId[r];
        sym[q] = -1;
        const nq = next[q];
        next[p] = nq;
        if (nq >= 0) prev[nq] = p;
        const pp = prev[p];
        if (pp >= 0) {
          const r2 = rankOf(sym[pp], sym[p]);
          if (r2 !== NONE) hpush(r2, pp);
        }
        if (nq >= 0) {
          const r2 = rankOf(sym[p], sym[nq]);
          if (r2 !== NONE) hpush(r2, p);
        }
      }
      let k = 0;
      for (let i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
      return k;
    };

    // One pre-token, s[st, en): cached ids, else byte-level BPE.
    const word = (s: string, st: number, en: number): void => {
      const len = en - st;
      let h = 0x811c9dc5 | 0;
      for (let i = st; i < en; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
      let k = h & tmask;
      for (;;) {
        const e = slots[k];
        if (e < 0) break;
        if (eHash[e] === h && eKeyLen[e] === len) {
          const o = eKeyOff[e] - st;
          let i = st;
          while (i < en && keyPool[o + i] === s.charCodeAt(i)) i++;
          if (i === en) {
            const vo = eValOff[e];
            const vn = eValLen[e];
            if (outLen + vn > out.length) grow(vn);
            for (let j = 0; j < vn; j++) out[outLen++] = valPool[vo + j];
            return;
          }
        }
        k = (k + 1) & tmask;
      }
      const piece = st === 0 && en === s.length ? s : s.slice(st, en);
      const n0 = bpeWord(piece);
      if (outLen + n0 > out.length) grow(n0);
      for (let j = 0; j < n0; j++) out[outLen++] = sym[j];
      if (len > cacheMaxLength) return;
      if (entries >= cacheEntries) {
        resetCache();
        k = h & tmask;
        while (slots[k] >= 0) k = (k + 1) & tmask;
      }
      if (keyUsed + len > keyPool.length) {
        const a = new Uint16Array(Math.max(keyPool.length * 2, keyUsed + len));
        a.set(keyPool);
        keyPool = a;
      }
      if (valUsed + n0 > valPool.length) {
        const a = new Uint32Array(Math.max(valPool.length * 2, valUsed + n0));
        a.set(valPool);
        valPool = a;
      }
      const e = entries++;
      slots[k] = e;
      eHash[e] = h;
      eKeyOff[e] = keyUsed;
      eKeyLen[e] = len;
      for (let i = 0; i < len; i++) keyPool[keyUsed++] = s.charCodeAt(st + i);
      eValOff[e] = valUsed;
      eValLen[e] = n0;
      for (let j = 0; j < n0; j++) valPool[valUsed++] = sym[j];
    };

    // Byte-level BPE of one pre-token: leaves its ids in sym[0..n) and returns n.
    const bpeWord = (piece: string): number => {
      if (bytes.length < piece.length * 3) bytes = new Uint8Array(piece.length * 3 + 16);
      const n = utf8.encodeInto(piece, bytes).written as number;
      if (sym.length < n) {
        sym = new Int32Array(n * 2);
        rk = new Int32Array(n * 2);
      }
      if (ignoreMerges) {
        let t = "";
        for (let i = 0; i < n; i++) t += b2c[bytes[i]];
        const direct = vocab.get(t);
        if (direct !== undefined) {
          sym[0] = direct;
          return 1;
        }
      }
      for (let i = 0; i < n; i++) sym[i] = byteIds[bytes[i]];
      if (n === 1) return 1;
      return n <= 128 ? mergeSmall(n) : mergeLarge(n);
    };

    // Build the pre-tokenizer chain back to front: each step hands its pieces to the next.
    let sink: Sink = word;
    for (let si = steps.length - 1; si >= 0; si--) {
      const st = steps[si];
      const next = sink;
      if (st.kind === "bytelevel") {
        const after: Sink = st.useRegex ? splitStep(translatePattern(gpt2Pattern, "pre_tokenizer (ByteLevel)", fail), "Isolated", false, next) : next;
        sink = st.prefix
          ? (s, a, b) => {
              if (s.charCodeAt(a) === 32) after(s, a, b);
              else {
                const t = ` ${s.slice(a, b)}`;
                after(t, 0, t.length);
              }
            }
          : after;
      } else sink = splitStep(st.re, st.behavior, st.invert, next);
    }
    const pretok = sink;

    function splitStep(re: RegExp, behavior: string, invert: boolean, next: Sink): Sink {
      const sticky = new RegExp(re.source, "uy");
      // The next non-empty match at or after `from` (global search); null if none.
      const nextMatch = (s: string, from: number): [number, number] | null => {
        re.lastIndex = from;
        for (;;) {
          const m = re.exec(s);
          if (m === null) return null;
          if (re.lastIndex > m.index) return [m.index, re.lastIndex];
          re.lastIndex += (s.codePointAt(re.lastIndex) ?? 0) > 0xffff ? 2 : 1;
        }
      };
      if ((behavior === "Isolated" && !invert) || (behavior === "Removed" && invert)) {
        // Pieces are the matches (and, for Isolated, the gaps between them). A sticky test at the
        // end of the last match finds the next match without allocating; a gap (no non-empty
        // match right there) falls back to a global search.
        const keepGaps = !invert;
        return (s0, a, b) => {
          const s = a === 0 && b === s0.length ? s0 : s0.slice(a, b);
          const L = s.length;
          let p = 0;
          while (p < L) {
            sticky.lastIndex = p;
            if (sticky.test(s) && sticky.lastIndex > p) {
              const e = sticky.lastIndex;
              next(s, p, e);
              p = e;
              continue;
            }
            const m = nextMatch(s, p + ((s.codePointAt(p) ?? 0) > 0xffff ? 2 : 1));
            const gapEnd = m ? m[0] : L;
            if (keepGaps) next(s, p, gapEnd);
            if (!m) break;
            next(s, m[0], m[1]);
            p = m[1];
          }
        };
      }
      return (s0, a0, b0) => {
        const s = a0 === 0 && b0 === s0.length ? s0 : s0.slice(a0, b0);
        // Segments [start, end, isDelimiter]; with invert the regex matches are the content.
        const segs: [number, number, boolean][] = [];
        let last = 0;
        for (let m = nextMatch(s, 0); m; m = nextMatch(s, m[1])) {
          if (m[0] > last) segs.push([last, m[0], invert]);
          segs.push([m[0], m[1], !invert]);
          last = m[1];
        }
        if (last < s.length) segs.push([last, s.length, invert]);
        // As the Rust library: a delimiter joins the piece before (after) it unless that one is
        // itself a delimiter; consecutive delimiters stay apart.
        const pieces: [number, number][] = [];
        if (behavior === "MergedWithNext") {
          let prevDelim = false;
          for (let i = segs.length - 1; i >= 0; i--) {
            const [x, y, delim] = segs[i];
            if (delim && !prevDelim && pieces.length) pieces[pieces.length - 1][0] = x;
            else pieces.push([x, y]);
            prevDelim = delim;
          }
          pieces.reverse();
        } else {
          let prevDelim = false;
          for (const [x, y, delim] of segs) {
            if (delim && behavior === "Removed") continue;
            if (delim && behavior === "MergedWithPrevious" && !prevDelim && pieces.length) pieces[pieces.length - 1][1] = y;
            else pieces.push([x, y]);
            prevDelim = delim;
          }
        }
        for (const [x, y] of pieces) next(s, x, y);
      };
    }

    // Added tokens split out of `s`; `onText` gets the text between them.
    const splitAdded = (re: RegExp | undefined, s: string, onText: Sink): void => {
      if (re === undefined) {
        if (s.length) onText(s, 0, s.length);
        return;
      }
      re.lastIndex = 0;
      let last = 0;
      for (;;) {
        const m = re.exec(s);
        if (m === null) break;
        let st = m.index;
        let en = re.lastIndex;
        const a = addedByContent.get(m[0]) as Added;
        if (a.singleWord && (isWordChar(s[st - 1]) || isWordChar(s[en]))) {
          re.lastIndex = st + 1;
          continue;
        }
        if (a.lstrip) while (st > last && wsRe.test(s[st - 1])) st--;
        if (a.rstrip) while (en < s.length && wsRe.test(s[en])) en++;
        if (st > last) onText(s, last, st);
        push(a.id);
        last = en;
        re.lastIndex = en;
      }
      if (last < s.length) onText(s, last, s.length);
    };
    const normalizedText: Sink = normalize
      ? (s, a, b) => {
          const t = normalize(a === 0 && b === s.length ? s : s.slice(a, b));
          if (t.length) splitAdded(normAddedRe, t, pretok);
        }
      : (s, a, b) => splitAdded(normAddedRe, a === 0 && b === s.length ? s : s.slice(a, b), pretok);

    const tokenBytesCache: (Uint8Array | undefined)[] = [];
    const core: BpeCore = {
      vocabSize: maxId + 1,
      encode(text: string): Uint32Array {
        outLen = 0;
        splitAdded(rawAddedRe, text, normalizedText);
        return out.slice(0, outLen);
      },
      idOf(token: string) {
        const a = addedByContent.get(token);
        return a ? a.id : vocab.get(token);
      },
      tokenOf(id: number) {
        return addedById.get(id) ?? idToToken[id];
      },
      isSpecial(id: number) {
        return specialIds.has(id);
      },
      bytesOf(id: number): Uint8Array {
        let b = tokenBytesCache[id];
        if (b) return b;
        const content = addedById.get(id);
        if (content !== undefined) b = utf8.encode(content);
        else {
          const tok = idToToken[id];
          if (tok === undefined) b = new Uint8Array(0);
          else {
            const arr: number[] = [];
            for (const ch of tok) {
              const x = c2b.get(ch);
              if (x !== undefined) arr.push(x);
              else for (const y of utf8.encode(ch)) arr.push(y);
            }
            b = new Uint8Array(arr);
          }
        }
        tokenBytesCache[id] = b;
        return b;
      },
      cacheSize() {
        return entries;
      },
      clearCache() {
        resetCache();
      },
    };
    return core;
  }

  return { compile, translatePattern, gpt2Pattern, byteToChar };
}
