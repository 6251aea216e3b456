/**
 * `midtrain prepare`: tokenizes raw sources into token stores, once.
 *
 *   midtrain prepare <config> [--source name ...]   every raw-file and corpus source of a config,
 *                                                   into the cache `midtrain run` reads
 *   midtrain prepare --input <files|folder|glob ...> --tokenizer <bytes|tokenizer.json> --out <dir>
 *                                                   one store, named in a config with `store: <dir>`
 */
import { loadTokenizer, type PrepareResult, prepare, type TokenizerSpec } from "@midtrain/data/node";
import { byteTokenizer } from "@midtrain/data";
import { type Command, InvalidArgumentError, Option } from "commander";
import { checkDataFiles, loadExperimentConfig } from "../node.js";
import { configTokenizerSpec, prepareProgressView, sourceStore } from "../stores.js";

function positive(what: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number >= 0`);
    return n;
  };
}

function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError("must be in [0, 1)");
  return n;
}

function summary(r: PrepareResult): string {
  const t = r.manifest.totals;
  const what = r.upToDate ? "up to date" : r.resumedShards ? `done (continued after ${r.resumedShards} complete shards)` : "done";
  return `${r.dir}: ${what} — train ${t.train.tokens.toLocaleString("en-US")} tokens / ${t.train.docs} docs / ${t.train.shards} shards, valid ${t.valid.tokens.toLocaleString("en-US")} tokens / ${t.valid.docs} docs`;
}

interface PrepareFlags {
  source?: string[];
  input?: string[];
  validInput?: string[];
  out?: string;
  tokenizer?: string;
  kind: "pretrain" | "sft";
  validFraction: number;
  splitSeed: number;
  textField?: string;
  separator?: string;
  shardTokens?: number;
  workers?: number;
  rebuild?: boolean;
}

/** Registers `midtrain prepare`. */
export function registerPrepareCommand(program: Command): void {
  program
    .command("prepare")
    .description("tokenize raw sources once into token stores (sharded token files) that runs read with bounded memory")
    .argument("[config]", "experiment config: prepare its corpus and file sources into the cache `midtrain run` uses ($MIDTRAIN_CACHE_DIR)")
    .option("-s, --source <name...>", "with a config: only these sources (names in data.sources / data.sft)")
    .option("-i, --input <paths...>", "without a config: files, folders or globs (quote globs) of the training split")
    .option("--valid-input <paths...>", "separate validation files (else --valid-fraction of documents by a seeded hash)")
    .option("-o, --out <dir>", "without a config: the store's folder")
    .option("-t, --tokenizer <spec>", "without a config: `bytes` or a Hugging Face tokenizer.json", "bytes")
    .addOption(new Option("--kind <kind>", "pretraining documents or SFT examples").choices(["pretrain", "sft"]).default("pretrain"))
    .option("--valid-fraction <f>", "share of documents held out for validation", fraction, 0.05)
    .option("--split-seed <n>", "seed of the validation hash", positive("--split-seed"), 0)
    .option("--text-field <field>", "pretraining: the field with the text (default text)")
    .option("--separator <text>", "SFT: text between prompt and response (default a newline)")
    .option("--shard-tokens <n>", "tokens per shard (default 33554432)", positive("--shard-tokens"))
    .option(
      "-w, --workers <n>",
      "tokenizer worker threads (default: the cores less one for reading and writing, at least 1, at most 8; 0 = none)",
      positive("--workers"),
    )
    .option("--rebuild", "replace a store prepared from other inputs or with another tokenizer (default: refuse)")
    .action(async (configPath: string | undefined, o: PrepareFlags) => {
      const view = (label: string) => prepareProgressView(label);
      if (configPath) {
        if (o.input || o.out) throw new InvalidArgumentError("give a config, or --input with --out, not both");
        const config = await loadExperimentConfig(configPath);
        checkDataFiles(config, configPath);
        const tokenizer = config.tokenizer === "byte" ? byteTokenizer() : loadTokenizer(configTokenizerSpec(config));
        const groups = [
          ["pretrain", config.data.sources],
          ["sft", config.data.sft],
        ] as const;
        const known = groups.flatMap(([, g]) => Object.keys(g));
        for (const s of o.source ?? []) if (!known.includes(s)) throw new InvalidArgumentError(`unknown source '${s}'; the config has ${known.join(", ")}`);
        for (const [kind, sources] of groups) {
          for (const [name, s] of Object.entries(sources)) {
            if (o.source && !o.source.includes(name)) continue;
            if ((s as { store?: string }).store) {
              console.log(`${name}: uses the prepared store ${(s as { store?: string }).store}`);
              continue;
            }
            const store = await sourceStore(config, name, s, kind, { tokenizer, progress: view, workers: o.workers, rebuild: true });
            const t = store.manifest.totals;
            console.log(
              `${name}: ${store.dir} — train ${t.train.tokens.toLocaleString("en-US")} tokens / ${t.train.docs} docs, valid ${t.valid.tokens.toLocaleString("en-US")} tokens / ${t.valid.docs} docs`,
            );
            store.close();
          }
        }
        return;
      }
      if (!o.input || !o.out) throw new InvalidArgumentError("give a config, or --input <files> and --out <dir> (and --tokenizer)");
      const spec: TokenizerSpec = o.tokenizer === "bytes" || o.tokenizer === "byte" || !o.tokenizer ? "bytes" : { tokenizerJson: o.tokenizer };
      const v = view(`prepare ${o.out}`);
      try {
        const r = await prepare({
          input: o.input,
          ...(o.validInput ? { validInput: o.validInput } : { validFraction: o.validFraction }),
          out: o.out,
          tokenizer: spec,
          kind: o.kind,
          splitSeed: o.splitSeed,
          ...(o.textField ? { textField: o.textField } : {}),
          ...(o.separator !== undefined ? { separator: o.separator } : {}),
          ...(o.shardTokens ? { shardTokens: o.shardTokens } : {}),
          workers: o.workers,
          rebuild: o.rebuild,
          onProgress: (p) => v.update(p),
        });
        v.stop();
        console.log(summary(r));
      } finally {
        v.stop();
      }
    });
}
