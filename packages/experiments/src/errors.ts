/** Base class for errors of the experiments package. */
export class ExperimentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An experiment config that does not validate; `issues` lists each bad field. */
export class ConfigError extends ExperimentError {
  constructor(
    readonly source: string,
    readonly issues: Array<{ path: string; message: string }>,
  ) {
    super(`invalid experiment config ${source}:\n${issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n")}`);
  }
}
