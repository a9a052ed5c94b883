import { useState } from 'preact/hooks'

/** EnvRow is one variable of a flow's env. */
export interface EnvRow {
  uid: number
  key: string
  value: string
}

let seq = 1
export const envRows = (env?: Record<string, string>): EnvRow[] => Object.entries(env ?? {}).map(([key, value]) => ({ uid: seq++, key, value }))

/** envObject is the definition's env: rows with a name, the last of a repeated name winning (the editor warns). */
export function envObject(rows: EnvRow[]): Record<string, string> | undefined {
  const out: Record<string, string> = {}
  for (const r of rows) if (r.key.trim()) out[r.key.trim()] = r.value
  return Object.keys(out).length ? out : undefined
}

const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/**
 * EnvEditor edits a flow's env: non-secret variables that expressions read
 * as env.NAME. Values are plain text, never evaluated; a secret belongs in
 * Secrets (the server refuses a pasted secret value on save).
 */
export function EnvEditor({ rows, onChange }: { rows: EnvRow[]; onChange: (rows: EnvRow[]) => void }) {
  const [open, setOpen] = useState(rows.length > 0)
  const set = (uid: number, patch: Partial<EnvRow>) => onChange(rows.map((r) => (r.uid === uid ? { ...r, ...patch } : r)))
  const counts = new Map<string, number>()
  for (const r of rows) counts.set(r.key.trim(), (counts.get(r.key.trim()) ?? 0) + 1)
  return (
    <div class="card env-card">
      <h2>
        <button type="button" class="linkish" aria-expanded={open} onClick={() => setOpen(!open)}>
          <span class="step-no">≡</span> Environment variables <span class="muted small">{rows.length ? `(${rows.length})` : ''}</span>
        </button>
      </h2>
      {open && (
        <>
          <p class="muted small">
            Plain-text values that expressions read as <code>env.NAME</code> (for example a base URL). They are not evaluated and not secret: put credentials in Secrets.
          </p>
          {rows.length > 0 && (
            <div class="env-rows" role="table" aria-label="Environment variables">
              {rows.map((r) => {
                const k = r.key.trim()
                const problem = !k && r.value ? 'A name is needed' : k && !ident.test(k) ? `Read it as env["${k}"]: not a plain identifier` : (counts.get(k) ?? 0) > 1 ? 'Repeated: the last one wins' : ''
                return (
                  <div class="env-row" role="row" key={r.uid}>
                    <input class="mono" value={r.key} onInput={(e) => set(r.uid, { key: e.currentTarget.value })} placeholder="API_BASE" aria-label="Variable name" />
                    <span aria-hidden="true">=</span>
                    <input class="mono grow" value={r.value} onInput={(e) => set(r.uid, { value: e.currentTarget.value })} placeholder="https://api.example.com" aria-label={`Value of ${k || 'the variable'}`} />
                    <button type="button" class="icon-btn" aria-label={`Remove ${k || 'variable'}`} onClick={() => onChange(rows.filter((x) => x.uid !== r.uid))}>
                      ×
                    </button>
                    {problem && <div class="field-warn small">{problem}</div>}
                  </div>
                )
              })}
            </div>
          )}
          <button type="button" class="btn small" onClick={() => onChange([...rows, { uid: seq++, key: '', value: '' }])}>
            + Add variable
          </button>
        </>
      )}
    </div>
  )
}
