import { parse as parseYaml } from "yaml";

/** One setting as given by one source, before parsing. */
export interface RawSetting {
  /** The environment variable name, SESSIONS_*, which names the setting. */
  readonly name: string;
  readonly value: string;
  /** How the user wrote it, for messages: `SESSIONS_GRPC_PORT`, `--grpc-port`, `config.yaml: grpc_port`. */
  readonly origin: string;
}

/** Where settings come from; main.ts hands over the process's. */
export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly argv?: readonly string[];
  /** Reads the file given by --config (or SESSIONS_CONFIG). */
  readonly readFile?: (path: string) => string;
}

/** The file key and the flag of a setting: SESSIONS_IDLE_TIMEOUT → idle_timeout, --idle-timeout. */
export const fileKey = (name: string) => name.replace(/^SESSIONS_/, "").toLowerCase();
export const flagName = (name: string) => `--${fileKey(name).replaceAll("_", "-")}`;

/**
 * Every setting given, lowest precedence first: the config file (`--config`
 * or SESSIONS_CONFIG), then SESSIONS_* variables, then flags. Unknown names
 * and unreadable input are reported as problems, all at once.
 */
export function collectSettings(
  sources: ConfigSources,
  known: readonly string[],
): { settings: RawSetting[]; problems: string[] } {
  const names = new Set(known);
  const settings: RawSetting[] = [];
  const problems: string[] = [];

  const flags: RawSetting[] = [];
  let configPath = sources.env.SESSIONS_CONFIG;
  const argv = sources.argv ?? [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (match === null) {
      problems.push(`${arg}: not a flag (flags are --name value or --name=value)`);
      continue;
    }
    const value = match[2] ?? argv[++i];
    if (value === undefined) {
      problems.push(`--${match[1]}: needs a value`);
      continue;
    }
    if (match[1] === "config") {
      configPath = value;
      continue;
    }
    const name = `SESSIONS_${match[1]!.replaceAll("-", "_").toUpperCase()}`;
    if (!names.has(name)) problems.push(`--${match[1]}: unknown flag`);
    else flags.push({ name, value, origin: `--${match[1]}` });
  }

  if (configPath !== undefined && configPath !== "") {
    settings.push(...readConfigFile(configPath, sources.readFile, names, problems));
  }
  for (const [name, value] of Object.entries(sources.env)) {
    if (!name.startsWith("SESSIONS_") || name === "SESSIONS_CONFIG" || value === undefined) continue;
    if (!names.has(name)) problems.push(`${name}: unknown setting`);
    else settings.push({ name, value, origin: name });
  }
  settings.push(...flags);
  return { settings, problems };
}

function readConfigFile(
  path: string,
  readFile: ConfigSources["readFile"],
  names: ReadonlySet<string>,
  problems: string[],
): RawSetting[] {
  let document: unknown;
  try {
    if (readFile === undefined) throw new Error("no file reader");
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    document = parseYaml(readFile(path));
  } catch (error) {
    problems.push(`${path}: cannot be read: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    return [];
  }
  if (document === null || document === undefined) return [];
  if (typeof document !== "object" || Array.isArray(document)) {
    problems.push(`${path}: must be a mapping of setting names to values`);
    return [];
  }
  const out: RawSetting[] = [];
  for (const [key, raw] of Object.entries(document)) {
    const name = `SESSIONS_${key.toUpperCase()}`;
    const origin = `${path}: ${key}`;
    if (!names.has(name)) {
      problems.push(`${origin}: unknown key`);
      continue;
    }
    const value = scalar(raw);
    if (value === undefined) problems.push(`${origin}: must be a string, a number, a boolean or a client=limit mapping`);
    else out.push({ name, value, origin });
  }
  return out;
}

/** A file value as the text an environment variable would hold. */
function scalar(raw: unknown): string | undefined {
  if (typeof raw === "string" || typeof raw === "number" || typeof raw === "boolean") return String(raw);
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    // client: limit mappings (max_sessions_per_client) become "client=limit,...".
    const pairs = Object.entries(raw).map(([k, v]) => (typeof v === "number" ? `${k}=${v}` : undefined));
    return pairs.includes(undefined) || pairs.length === 0 ? undefined : pairs.join(",");
  }
  return undefined;
}
