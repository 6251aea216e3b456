#!/usr/bin/env node
// The `midtrain` command. It always runs the CLI, whatever reached it: npm, pnpm or yarn bin links,
// npx, a global install, a Windows shim. It is committed (not built), so a fresh clone's
// `pnpm install` can link it before anything is built.
import { runCli } from "../dist/cli.js";

runCli();
