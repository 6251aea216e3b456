import { didYouMean, suggest } from "@midtrain/common";
import { DuplicateScheduleError, PluginLoadError, ScheduleConfigError, ScheduleError, ScheduleTimeError, UnknownScheduleError } from "./errors.js";
import { COMMON_KEYS, isPlainObject, Params, show } from "./params.js";
import type { TimeUnit, TrainingTime } from "./time.js";
import type { BuildContext, LrSchedule, MixtureSchedule, ScheduleConfig, ScheduleKind, SchedulePlugin, ScheduleTypeDef } from "./types.js";

/** Options of the build functions. */
export interface BuildOptions {
  /** Where the schedule sits in a larger config, for messages (default `"lr"` / `"mixture"`). */
  path?: string;
  /** Time unit inherited from an enclosing config. */
  unit?: TimeUnit;
}

export interface MixtureBuildOptions extends BuildOptions {
  /**
   * The sources the caller mixes. Weights may only name these, and `at` returns a weight for
   * each of them (0 for sources the schedule does not mention). Without it, the sources are
   * the ones the config names, in order of first mention.
   */
  sources?: readonly string[];
}

const TYPE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@-]*$/;
const KIND_LABEL: Record<ScheduleKind, string> = { lr: "learning-rate", mixture: "mixture" };
const DIRECT = "(registered directly)";

function isTypeDef(x: unknown): x is ScheduleTypeDef {
  return isPlainObject(x) && (x.kind === "lr" || x.kind === "mixture") && typeof x.type === "string";
}

/** True when `x` has the shape of a {@link SchedulePlugin}. */
export function isSchedulePlugin(x: unknown): x is SchedulePlugin {
  return typeof x === "object" && x !== null && typeof (x as any).name === "string" && Array.isArray((x as any).types);
}

function checkDef(def: unknown, owner: string): asserts def is ScheduleTypeDef {
  const where = owner === DIRECT ? "" : ` in plugin '${owner}'`;
  if (!isTypeDef(def)) {
    throw new PluginLoadError(
      `invalid schedule type definition${where}: expected { kind: "lr" | "mixture", type, description, params, build } (got ${show(def)})`,
    );
  }
  if (!TYPE_NAME.test(def.type)) {
    throw new PluginLoadError(`invalid schedule type name '${def.type}'${where}: use letters, digits and - . _ : / @`);
  }
  if (typeof def.build !== "function") throw new PluginLoadError(`schedule type '${def.type}'${where} has no build function`);
  if (!isPlainObject(def.params)) {
    throw new PluginLoadError(`schedule type '${def.type}'${where} needs a params object documenting its parameters`);
  }
  for (const k of COMMON_KEYS) {
    if (k in def.params) throw new PluginLoadError(`schedule type '${def.type}'${where} may not declare a parameter named '${k}'`);
  }
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Schedule types by kind and name. Learning-rate and mixture schedules share one registry
 * (the same name may exist once per kind). Built-in types come from `createRegistry()`;
 * plugins add more with {@link Registry.register} or `loadPlugin`.
 */
export class Registry {
  #defs = new Map<string, ScheduleTypeDef>();
  #owners = new Map<string, string>();
  #plugins = new Map<string, SchedulePlugin>();

  /**
   * Adds a plugin, one type definition or a list of them. A name already taken (for that
   * kind) throws {@link DuplicateScheduleError} unless `replace` is set; nothing is added
   * when any entry fails. Registering the same plugin object twice is a no-op.
   */
  register(item: SchedulePlugin | ScheduleTypeDef | readonly ScheduleTypeDef[], opts: { replace?: boolean } = {}): this {
    let owner = DIRECT;
    let defs: readonly unknown[];
    if (Array.isArray(item)) defs = item;
    else if (isSchedulePlugin(item)) {
      const existing = this.#plugins.get(item.name);
      if (existing === item) return this;
      if (existing && !opts.replace) {
        throw new DuplicateScheduleError(
          `plugin '${item.name}' is already registered (by a different object: two copies of the package?); load each plugin once`,
        );
      }
      owner = item.name;
      defs = item.types;
    } else defs = [item];

    const seen = new Set<string>();
    for (const def of defs) {
      checkDef(def, owner);
      const key = `${def.kind}:${def.type}`;
      if (seen.has(key)) {
        throw new DuplicateScheduleError(
          `${KIND_LABEL[def.kind]} schedule type '${def.type}' appears twice in ${owner === DIRECT ? "the list" : `plugin '${owner}'`}`,
        );
      }
      seen.add(key);
      if (this.#defs.has(key) && !opts.replace) {
        const by = this.#owners.get(key)!;
        throw new DuplicateScheduleError(
          `${KIND_LABEL[def.kind]} schedule type '${def.type}' is already registered${by === DIRECT ? "" : ` by plugin '${by}'`}; ` +
            "give the new type another name (e.g. prefix it with your package name), or pass { replace: true } to override it on purpose",
        );
      }
    }
    for (const def of defs as ScheduleTypeDef[]) {
      const key = `${def.kind}:${def.type}`;
      this.#defs.set(key, def);
      this.#owners.set(key, owner);
    }
    if (owner !== DIRECT) this.#plugins.set(owner, item as SchedulePlugin);
    return this;
  }

  /** Whether `type` is registered (for `kind`, or for either kind). */
  has(type: string, kind?: ScheduleKind): boolean {
    if (kind) return this.#defs.has(`${kind}:${type}`);
    return this.#defs.has(`lr:${type}`) || this.#defs.has(`mixture:${type}`);
  }

  /** Registered type names of `kind` (both kinds when omitted), sorted. */
  types(kind?: ScheduleKind): string[] {
    const out = new Set<string>();
    for (const def of this.#defs.values()) if (!kind || def.kind === kind) out.add(def.type);
    return [...out].sort();
  }

  /** The definition of a type, or undefined. */
  get(kind: ScheduleKind, type: string): ScheduleTypeDef | undefined {
    return this.#defs.get(`${kind}:${type}`);
  }

  /** Name of the plugin that registered a type. */
  ownerOf(kind: ScheduleKind, type: string): string | undefined {
    return this.#owners.get(`${kind}:${type}`);
  }

  /** Names of the registered plugins. */
  plugins(): string[] {
    return [...this.#plugins.keys()];
  }

  /** An independent copy (same definitions; later registrations do not affect each other). */
  clone(): Registry {
    const r = new Registry();
    r.#defs = new Map(this.#defs);
    r.#owners = new Map(this.#owners);
    r.#plugins = new Map(this.#plugins);
    return r;
  }

  /** Builds a learning-rate schedule from its config. */
  buildLr(config: unknown, opts: BuildOptions = {}): LrSchedule {
    return this.#buildLr(config, opts.path ?? "lr", opts.unit, undefined);
  }

  /** Builds a mixture schedule from its config. */
  buildMixture(config: unknown, opts: MixtureBuildOptions = {}): MixtureSchedule {
    let sources: string[] | undefined;
    if (opts.sources !== undefined) {
      const path = opts.path ?? "mixture";
      if (!Array.isArray(opts.sources) || opts.sources.length === 0) {
        throw new ScheduleConfigError(path, "the declared sources must be a non-empty list of names");
      }
      sources = [];
      for (const s of opts.sources) {
        if (typeof s !== "string" || s.length === 0) throw new ScheduleConfigError(path, `source names must be non-empty strings (got ${show(s)})`);
        if (sources.includes(s)) throw new ScheduleConfigError(path, `source '${s}' is declared twice`);
        sources.push(s);
      }
    }
    return this.#buildMixture(config, opts.path ?? "mixture", opts.unit, sources);
  }

  #resolve(kind: ScheduleKind, config: unknown, path: string): { def: ScheduleTypeDef; config: ScheduleConfig } {
    if (!isPlainObject(config)) {
      throw new ScheduleConfigError(path, `must be a schedule config { "type": ..., ...params } (got ${show(config)})`);
    }
    const known = this.types(kind);
    if (typeof config.type !== "string" || config.type.length === 0) {
      throw new ScheduleConfigError(`${path}.type`, `is required: name a ${KIND_LABEL[kind]} schedule type (${known.join(", ")})`);
    }
    const type = config.type;
    const def = this.#defs.get(`${kind}:${type}`);
    if (!def) {
      const other: ScheduleKind = kind === "lr" ? "mixture" : "lr";
      if (this.#defs.has(`${other}:${type}`)) {
        throw new UnknownScheduleError(
          `${path}.type`,
          type,
          [],
          `'${type}' is a ${KIND_LABEL[other]} schedule, but a ${KIND_LABEL[kind]} schedule is expected here; ${kind} types: ${known.join(", ")}`,
        );
      }
      const suggestions = suggest(type, known);
      throw new UnknownScheduleError(
        `${path}.type`,
        type,
        suggestions,
        `unknown ${KIND_LABEL[kind]} schedule '${type}'${didYouMean(suggestions)}. Known ${kind} types: ${known.join(", ")}. ` +
          'A type from a plugin needs the plugin loaded first: loadPlugin("<package>") or "plugins": ["<package>"] in the config',
      );
    }
    return { def, config: config as ScheduleConfig };
  }

  #context(path: string, unit: TimeUnit | undefined, sources: readonly string[] | undefined): BuildContext {
    return {
      registry: this,
      path,
      unit,
      sources,
      buildLr: (c, p, o) => this.#buildLr(c, p, o?.unit, sources),
      buildMixture: (c, p, o) => this.#buildMixture(c, p, o?.unit, sources),
    };
  }

  #params(def: ScheduleTypeDef, config: ScheduleConfig, path: string, unit?: TimeUnit, sources?: readonly string[]): Params {
    return new Params(config, path, [...COMMON_KEYS, ...Object.keys(def.params)], {
      unit,
      sources,
      what: `${KIND_LABEL[def.kind]} schedule '${def.type}'`,
    });
  }

  #buildLr(raw: unknown, path: string, unit: TimeUnit | undefined, sources: readonly string[] | undefined): LrSchedule {
    const { def, config } = this.#resolve("lr", raw, path);
    if (def.kind !== "lr") throw new ScheduleError("unreachable");
    const copy = deepFreeze(JSON.parse(JSON.stringify(config)) as ScheduleConfig);
    const fn = def.build(this.#params(def, config, path, unit, sources), this.#context(path, unit, sources));
    if (typeof fn !== "function") {
      throw new PluginLoadError(`schedule type '${def.type}' (lr): build must return a function of training time`);
    }
    return {
      kind: "lr",
      config: copy,
      at(t: TrainingTime): number {
        const v = fn(t);
        if (typeof v !== "number" || !Number.isFinite(v)) {
          throw new ScheduleTimeError(`${path}: '${def.type}' gave ${String(v)} at step ${t?.step}; a learning rate must be a finite number`);
        }
        return v;
      },
    };
  }

  #buildMixture(raw: unknown, path: string, unit: TimeUnit | undefined, declared: readonly string[] | undefined): MixtureSchedule {
    const { def, config } = this.#resolve("mixture", raw, path);
    if (def.kind !== "mixture") throw new ScheduleError("unreachable");
    const copy = deepFreeze(JSON.parse(JSON.stringify(config)) as ScheduleConfig);
    const impl = def.build(this.#params(def, config, path, unit, declared), this.#context(path, unit, declared));
    if (!impl || typeof impl.at !== "function" || !Array.isArray(impl.sources)) {
      throw new PluginLoadError(`schedule type '${def.type}' (mixture): build must return { sources, at }`);
    }
    const sources = declared ? [...declared] : [...new Set(impl.sources)];
    const known = new Set(sources);
    for (const s of impl.sources) {
      if (!known.has(s)) {
        throw new ScheduleConfigError(path, `unknown source '${s}'${didYouMean(suggest(s, sources))}; declared sources: ${sources.join(", ")}`);
      }
    }
    const stateful = def.stateful === true;
    if (stateful && (typeof impl.getState !== "function" || typeof impl.setState !== "function" || typeof impl.update !== "function")) {
      throw new PluginLoadError(`schedule type '${def.type}' is declared stateful but its build does not return getState, setState and update`);
    }
    const schedule: MixtureSchedule = {
      kind: "mixture",
      config: copy,
      sources,
      stateful,
      at(t: TrainingTime): Record<string, number> {
        const w = impl.at(t);
        for (const k of Object.keys(w)) {
          if (!known.has(k)) throw new ScheduleTimeError(`${path}: '${def.type}' gave a weight for unknown source '${k}'`);
        }
        const out: Record<string, number> = {};
        let sum = 0;
        for (const s of sources) {
          const v = w[s] ?? 0;
          if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
            throw new ScheduleTimeError(`${path}: '${def.type}' gave weight ${String(v)} to '${s}'; weights must be finite and >= 0`);
          }
          out[s] = v;
          sum += v;
        }
        if (!(sum > 0)) throw new ScheduleTimeError(`${path}: '${def.type}' gave all-zero weights at step ${t?.step}`);
        for (const s of sources) out[s] /= sum;
        return out;
      },
    };
    if (stateful) {
      schedule.getState = () => impl.getState!();
      schedule.setState = (s: unknown) => impl.setState!(s);
      schedule.update = (f) => impl.update!(f);
    }
    return schedule;
  }
}
