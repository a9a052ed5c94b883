// The API client. The browser is signed in by an HttpOnly session cookie
// that scripts cannot read; state-changing requests also carry the
// session's CSRF token, which lives only in this module's memory.

export interface Problem {
  block?: string
  field?: string
  line?: number
  column?: number
  message: string
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public problems: Problem[] = [],
    public line?: number,
    public column?: number,
  ) {
    super(message)
  }
}

let csrf = ''
export function setCSRF(token: string) {
  csrf = token
}

type Listener = () => void
const unauthListeners = new Set<Listener>()
/** onUnauthenticated runs when the session has ended (401). */
export function onUnauthenticated(f: Listener) {
  unauthListeners.add(f)
  return () => unauthListeners.delete(f)
}

export async function request<T = any>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf
  let res: Response
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal,
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'network', 'The server cannot be reached. Check that hushflow serve is running.')
  }
  if (res.status === 204) return undefined as T
  let data: any = null
  const text = await res.text()
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = null
    }
  }
  if (!res.ok) {
    const e = data?.error ?? {}
    if (res.status === 401 && !path.startsWith('/ui/session')) unauthListeners.forEach((f) => f())
    throw new ApiError(res.status, e.code ?? 'http_' + res.status, e.message ?? `${res.status} ${res.statusText}`, e.problems ?? [], e.line, e.column)
  }
  return data as T
}

export const get = <T = any>(path: string, signal?: AbortSignal) => request<T>('GET', path, undefined, signal)
export const post = <T = any>(path: string, body?: unknown) => request<T>('POST', path, body ?? {})
export const put = <T = any>(path: string, body?: unknown) => request<T>('PUT', path, body ?? {})
export const del = <T = any>(path: string) => request<T>('DELETE', path)

export const enc = encodeURIComponent

export function qs(params: Record<string, string | undefined | boolean>) {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '' && v !== false) p.set(k, String(v))
  const s = p.toString()
  return s ? '?' + s : ''
}

// Shapes of the API's answers (only what the UI reads).

export interface User {
  id: string
  name: string
  admin: boolean
}
export interface Project {
  id: string
  name: string
  created_at?: string
}
export interface Environment {
  name: string
}
export interface Secret {
  id: string
  name: string
  scope: { project?: string; environment?: string }
  scope_label: string
  kind: string
  version: number
  description: string
  allowed_hosts: string[] | null
  weak: boolean
  updated_at: string
  updated_by: string
  from?: string
}
export interface Field {
  name: string
  type: string
  required?: boolean
  doc: string
  default?: unknown
  secret?: boolean
  raw?: boolean
  example?: string
}
export interface BlockType {
  id: string
  spec: { summary: string; fields: Field[] }
}
export interface Trigger {
  type: string
  cron?: string
  environment?: string
  topic?: string
  filter?: string
  signing_secret?: string
  signature?: string
}
export interface BlockDef {
  id: string
  type: string
  config?: Record<string, unknown>
  if?: string
  timeout?: string | number
  retry?: { attempts: number; backoff?: string | number }
  continue_on_error?: boolean
  each?: string
  concurrency?: number
  max_items?: number
  /** Blocks this one runs after; absent: the block before it; []: with the run. */
  needs?: string[]
}
export interface Definition {
  name: string
  description?: string
  trigger: Trigger
  blocks: BlockDef[]
  on_error?: BlockDef[]
  /** The block whose output is the run's output. */
  output?: string
  env?: Record<string, string>
  max_concurrent_runs?: number
}
export interface Flow {
  id: string
  project: string
  name: string
  version: number
  trigger_type: string
  updated_at: string
  updated_by: string
  definition?: Definition
  /** the flow's latest run (GET /flows), absent when it never ran */
  last_run?: { id: string; status: string; queued_at: string; finished_at?: string }
  /** when the flow was paused (it starts no run), and by whom; absent while it is not */
  paused_at?: string
  paused_by?: string
}
export interface FlowVersion {
  version: number
  created_at: string
  created_by: string
  definition?: Definition
}
export interface Member {
  user_id: string
  name?: string
  role: string
  updated_at?: string
}
export interface UserInfo {
  id: string
  name: string
  admin: boolean
  created_at: string
}
export interface Token {
  id: string
  name: string
  created_at: string
  last_used_at?: string
  expires_at?: string
  revoked_at?: string
}
export interface AuditRecord {
  id: string
  at: string
  actor: string
  action: string
  secret_id?: string
  secret_name?: string
  version?: number
  project?: string
  environment?: string
  scope?: string
  run_project?: string
  run_environment?: string
  run_id?: string
  block_id?: string
  detail?: string
}
export interface Run {
  id: string
  project: string
  flow: string
  flow_version: number
  environment: string
  trigger: string
  status: string
  error?: string
  output?: unknown
  queued_at: string
  started_at?: string
  finished_at?: string
  created_by: string
  /** when a queued or waiting run is due */
  available_at?: string
  /** times a worker took the run */
  attempt?: number
  /** times the run was interrupted and resumed */
  resumes?: number
  resume_reason?: string
  /** the id of the run this run repeats (Run again) */
  rerun_of?: string
  /** a sub-flow: the run whose flow block started it, and that block */
  parent_run_id?: string
  parent_block?: string
  depth?: number
  /** the runs this run's flow blocks started (GET of one run) */
  children?: { id: string; flow: string; status: string; parent_block: string }[]
}
export interface RunEvent {
  seq: number
  at: string
  type: string
  block?: string
  data?: any
}
