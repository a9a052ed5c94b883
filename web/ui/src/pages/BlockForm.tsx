import { useState } from 'preact/hooks'
import type { BlockDef, BlockType, Field, Problem } from '../api'
import { ExprEditor, syntaxErrors, type CompletionScope, type Located, type SourceKind } from '../editor'

/** A block as the editor edits it: every setting as the text of its input. */
export interface EditBlock {
  uid: number
  id: string
  type: string
  config: Record<string, string>
  if: string
  timeout: string
  attempts: string
  backoff: string
  continueOnError: boolean
  each: string
  concurrency: string
  maxItems: string
  /** prev: after the block before it (no needs); start: with the run (needs: []); list: after needs */
  needsMode: 'prev' | 'start' | 'list'
  needs: string[]
}

let uidSeq = 1

/**
 * Settings every block has, edited under "More settings".
 * A block type's own config field of the same name (the http block's
 * timeout and retry) is not offered a second time among its fields; it is
 * shown only when the flow already sets it, so a stored value stays visible
 * and editable.
 */
const commonSettings = new Set(['timeout', 'retry'])

/** toSource turns a stored config value into editor text: strings are expressions, literals become their JSON. */
function toSource(v: unknown): string {
  if (typeof v === 'string') return v
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return '(' + JSON.stringify(v, null, 2) + ')'
  return JSON.stringify(v)
}

export function newBlock(id: string, type: string): EditBlock {
  return { uid: uidSeq++, id, type, config: {}, if: '', timeout: '', attempts: '', backoff: '', continueOnError: false, each: '', concurrency: '', maxItems: '', needsMode: 'prev', needs: [] }
}

export function editBlock(b: BlockDef): EditBlock {
  return {
    ...newBlock(b.id, b.type),
    config: Object.fromEntries(Object.entries(b.config ?? {}).map(([k, v]) => [k, toSource(v)])),
    if: b.if ?? '',
    timeout: b.timeout === undefined ? '' : String(b.timeout),
    attempts: b.retry?.attempts ? String(b.retry.attempts) : '',
    backoff: b.retry?.backoff === undefined ? '' : String(b.retry.backoff),
    continueOnError: !!b.continue_on_error,
    each: b.each ?? '',
    concurrency: b.concurrency === undefined ? '' : String(b.concurrency),
    maxItems: b.max_items === undefined ? '' : String(b.max_items),
    needsMode: b.needs === undefined ? 'prev' : b.needs.length ? 'list' : 'start',
    needs: b.needs ?? [],
  }
}

const num = (s: string) => (/^\d+$/.test(s.trim()) ? Number(s) : s.trim())

export function blockDef(b: EditBlock): BlockDef {
  const config: Record<string, string> = {}
  for (const [k, v] of Object.entries(b.config)) if (v.trim() !== '') config[k] = v
  const out: BlockDef = { id: b.id.trim(), type: b.type, config }
  if (b.if.trim()) out.if = b.if.trim()
  if (b.timeout.trim()) out.timeout = num(b.timeout)
  if (b.attempts.trim()) {
    out.retry = { attempts: Number(b.attempts) }
    if (b.backoff.trim()) out.retry.backoff = num(b.backoff)
  }
  if (b.continueOnError) out.continue_on_error = true
  if (b.each.trim()) out.each = b.each.trim()
  // Numbers the server checks (a number of 0 or a text is refused there, by name).
  if (b.concurrency.trim()) out.concurrency = num(b.concurrency) as number
  if (b.maxItems.trim()) out.max_items = num(b.maxItems) as number
  if (b.needsMode === 'start') out.needs = []
  else if (b.needsMode === 'list') out.needs = [...b.needs]
  return out
}

/** hasMore says whether any of the settings under "More settings" is set. */
const hasMore = (b: EditBlock) => !!(b.if || b.timeout || b.attempts || b.continueOnError || b.each || b.concurrency || b.maxItems || b.needsMode !== 'prev')

export interface Preview {
  key: string
  busy: boolean
  value?: unknown
  error?: string
}

/** placeholderOf is the text an empty field shows: an example, marked as one, or the default. */
function placeholderOf(f: Field) {
  if (f.example) return 'e.g. ' + f.example
  return f.default !== undefined ? `default: ${JSON.stringify(f.default)}` : ''
}

function FieldRow(props: {
  block: EditBlock
  field: Field
  value: string
  problems: Problem[]
  scope: () => CompletionScope
  onChange: (v: string) => void
  preview: Preview | null
  onFocusField: () => void
  onSave: () => void
}) {
  const { field, block } = props
  const kind: SourceKind = field.raw ? 'code' : 'field'
  const syntax = syntaxErrors(props.value, kind)
  const located: Located[] = props.problems.map((p) => ({ line: p.line ?? 0, column: p.column ?? 0, message: p.message }))
  const domId = `f-${block.uid}-${field.name}`
  return (
    <div class={'field' + (syntax.length || props.problems.length ? ' has-error' : '')} data-field={field.name}>
      <div class="field-label">
        <label for={domId} id={domId + '-l'}>
          <span class="mono">{field.name}</span>
          {field.required && (
            <span class="req" title="required">
              *
            </span>
          )}
        </label>
        <span class="tag">{field.type}</span>
        {field.secret && <span class="tag secret">secret</span>}
        <span class="doc">{field.doc}</span>
      </div>
      <ExprEditor
        id={domId}
        label={`${block.id} ${field.name}`}
        kind={kind}
        value={props.value}
        onChange={props.onChange}
        scope={props.scope}
        problems={located}
        placeholder={placeholderOf(field)}
        onFocus={props.onFocusField}
        onSave={props.onSave}
      />
      {syntax.map((e) => (
        <div class="field-error syntax-error" role="alert">
          <span class="loc">
            {e.line}:{e.column}
          </span>{' '}
          {e.message}
        </div>
      ))}
      {props.problems.map((p) => (
        <div class="field-error server-error" role="alert">
          {p.line ? (
            <span class="loc">
              {p.line}:{p.column}
            </span>
          ) : null}{' '}
          {p.message}
        </div>
      ))}
      {props.preview && !syntax.length && (
        <div class={'preview' + (props.preview.error ? ' preview-error' : '')} aria-live="polite">
          <span class="preview-label">{props.preview.busy ? 'evaluating…' : 'preview'}</span>
          {props.preview.error ? <span>{props.preview.error}</span> : <code>{props.preview.value === undefined ? 'undefined' : JSON.stringify(props.preview.value)}</code>}
        </div>
      )}
    </div>
  )
}

/** ExprSetting is one of a block's own expressions (if, each) with its problems. */
function ExprSetting(props: { b: EditBlock; name: 'if' | 'each'; doc: string; placeholder: string; problems: Problem[]; scope: () => CompletionScope; onChange: (v: string) => void; onSave: () => void }) {
  const { b, name } = props
  return (
    <div class={'field' + (props.problems.length ? ' has-error' : '')} data-setting={name}>
      <div class="field-label">
        <label>
          <span class="mono">{name}</span>
        </label>
        <span class="doc">{props.doc}</span>
      </div>
      <ExprEditor
        label={`${b.id} ${name}`}
        kind={name === 'if' ? 'condition' : 'field'}
        value={b[name]}
        onChange={props.onChange}
        scope={props.scope}
        problems={props.problems.map((p) => ({ line: p.line ?? 0, column: p.column ?? 0, message: p.message }))}
        placeholder={props.placeholder}
        onSave={props.onSave}
      />
      {props.problems.map((p) => (
        <div class="field-error" role="alert">
          {p.line ? `${p.line}:${p.column} ` : ''}
          {p.message}
        </div>
      ))}
    </div>
  )
}

export interface BlockFormProps {
  block: EditBlock
  index: number
  count: number
  type?: BlockType
  /** the ids of the flow's other blocks, in order: what needs can name */
  others: string[]
  /** the server's problems of this block */
  problems: Problem[]
  scope: () => CompletionScope
  preview: Preview | null
  /** the list item of the long form, or a panel beside the graph */
  as: 'li' | 'div'
  onChange: (g: (b: EditBlock) => EditBlock) => void
  onRename: (id: string) => void
  onMove: (d: number) => void
  onRemove: () => void
  onFocusField: (field: string) => void
  onSave: () => void
}

/**
 * BlockForm edits one block: its id, its type's config fields (required
 * ones and those with a value shown, the other optional ones folded) and
 * under "More settings" its condition, loop, needs, timeout, retries and
 * error handling (open when one is set).
 */
export function BlockForm(props: BlockFormProps) {
  const { block: b, index: i, type } = props
  const spec = type?.spec
  const fields: Field[] = (spec?.fields ?? [])
    .filter((x) => !commonSettings.has(x.name) || x.name in b.config)
    .map((x) => (commonSettings.has(x.name) ? { ...x, doc: `${x.doc} This is the ${b.type} block's own setting; the block's timeout and retries (below) apply too.` } : x))
  for (const k of Object.keys(b.config)) if (!fields.some((x) => x.name === k)) fields.push({ name: k, type: 'any', doc: 'not a field of this block type' })
  const problemsOf = (field: string) => props.problems.filter((p) => p.field === field)
  // Which optional fields are folded is decided when the form opens, so a
  // field being typed into does not jump out of the fold under the cursor.
  const [shown] = useState(() => new Set(fields.filter((x) => x.required || (b.config[x.name] ?? '').trim() !== '' || problemsOf(x.name).length).map((x) => x.name)))
  const main = fields.filter((x) => shown.has(x.name))
  const folded = fields.filter((x) => !shown.has(x.name))
  const own = new Set([...fields.map((x) => x.name), 'if', 'each', 'concurrency', 'max_items', 'needs'])
  const bp = props.problems.filter((p) => !own.has(p.field ?? ''))
  const moreProblems = props.problems.filter((p) => ['if', 'each', 'concurrency', 'max_items', 'needs'].includes(p.field ?? ''))
  const set = props.onChange
  const row = (field: Field) => (
    <FieldRow
      key={field.name}
      block={b}
      field={field}
      value={b.config[field.name] ?? ''}
      problems={problemsOf(field.name)}
      scope={props.scope}
      onChange={(v) => set((x) => ({ ...x, config: { ...x.config, [field.name]: v } }))}
      preview={props.preview && props.preview.key === `${b.uid}/${field.name}` ? props.preview : null}
      onFocusField={() => props.onFocusField(field.name)}
      onSave={props.onSave}
    />
  )
  const Tag = props.as
  return (
    <Tag class="card block" data-block={b.id}>
      <header class="block-head">
        <span class="step-no">{i + 1}</span>
        <input class="mono block-id" aria-label={`Block ${i + 1} id`} value={b.id} onInput={(e) => props.onRename(e.currentTarget.value)} />
        <span class="tag type">{b.type}</span>
        <span class="muted summary">{spec?.summary}</span>
        <span class="block-actions">
          <button type="button" class="icon-btn" aria-label={`Move ${b.id} up`} disabled={i === 0} onClick={() => props.onMove(-1)}>
            ↑
          </button>
          <button type="button" class="icon-btn" aria-label={`Move ${b.id} down`} disabled={i === props.count - 1} onClick={() => props.onMove(1)}>
            ↓
          </button>
          <button type="button" class="icon-btn danger" aria-label={`Remove ${b.id}`} onClick={props.onRemove}>
            ×
          </button>
        </span>
      </header>
      {bp.map((p) => (
        <div class="field-error" role="alert">
          {p.field && <span class="mono">{p.field}: </span>}
          {p.message}
        </div>
      ))}
      {main.map(row)}
      {folded.length > 0 && (
        <details class="more-fields">
          <summary>
            Optional fields: <span class="mono">{folded.map((x) => x.name).join(', ')}</span>
          </summary>
          {folded.map(row)}
        </details>
      )}
      <details class="block-options" open={hasMore(b) || moreProblems.length > 0}>
        <summary>More settings: condition, loop, needs, timeout, retries and errors</summary>
        <ExprSetting
          b={b}
          name="if"
          doc="An expr-lang condition; the block is skipped when it is false (with each: per item)."
          placeholder="e.g. steps.call.output.status == 200"
          problems={problemsOf('if')}
          scope={props.scope}
          onChange={(v) => set((x) => ({ ...x, if: v }))}
          onSave={props.onSave}
        />
        <fieldset class="needs" data-setting="needs">
          <legend>Runs after</legend>
          <div class="needs-modes" role="radiogroup" aria-label={`${b.id} runs after`}>
            <label class="inline">
              <input type="radio" name={`needs-${b.uid}`} checked={b.needsMode === 'prev'} onChange={() => set((x) => ({ ...x, needsMode: 'prev' }))} />
              {i === 0 ? 'the start of the run (first block)' : 'the block before it'}
            </label>
            <label class="inline">
              <input type="radio" name={`needs-${b.uid}`} checked={b.needsMode === 'start'} onChange={() => set((x) => ({ ...x, needsMode: 'start' }))} />
              the start of the run (<span class="mono">needs: []</span>)
            </label>
            <label class="inline">
              <input type="radio" name={`needs-${b.uid}`} checked={b.needsMode === 'list'} onChange={() => set((x) => ({ ...x, needsMode: 'list' }))} />
              these blocks:
            </label>
          </div>
          <div class="needs-list" role="group" aria-label={`${b.id} needs`}>
            {props.others.length === 0 && <span class="muted small">no other block</span>}
            {props.others.map((id) => (
              <label class="inline chip">
                <input
                  type="checkbox"
                  checked={b.needsMode === 'list' && b.needs.includes(id)}
                  onChange={(e) => {
                    const on = e.currentTarget.checked
                    set((x) => {
                      const cur = x.needsMode === 'list' ? x.needs : []
                      // In the order of the list; an id no block has any more stays until saved (the server names it).
                      const needs = props.others.filter((o) => (o === id ? on : cur.includes(o))).concat(cur.filter((n) => !props.others.includes(n)))
                      return { ...x, needsMode: 'list', needs }
                    })
                  }}
                />
                <span class="mono">{id}</span>
              </label>
            ))}
          </div>
          <small>Blocks whose needs are met run at the same time. A block reads <span class="mono">steps.X</span> only of blocks it runs after.</small>
          {problemsOf('needs').map((p) => (
            <div class="field-error" role="alert">
              {p.message}
            </div>
          ))}
        </fieldset>
        <ExprSetting
          b={b}
          name="each"
          doc="Run the block once per element of this array, with item and index."
          placeholder="e.g. input.users"
          problems={problemsOf('each')}
          scope={props.scope}
          onChange={(v) => set((x) => ({ ...x, each: v }))}
          onSave={props.onSave}
        />
        <div class="form-row">
          <label>
            Concurrency
            <input class="mono" type="number" min={1} max={50} value={b.concurrency} placeholder="e.g. 5" title="Iterations at once: 1 to 50 (default 1)" onInput={(e) => set((x) => ({ ...x, concurrency: e.currentTarget.value }))} />
          </label>
          <label>
            Max items
            <input class="mono" type="number" min={1} value={b.maxItems} placeholder="e.g. 500" onInput={(e) => set((x) => ({ ...x, maxItems: e.currentTarget.value }))} />
          </label>
        </div>
        {[...problemsOf('concurrency'), ...problemsOf('max_items')].map((p) => (
          <div class="field-error" role="alert">
            {p.field}: {p.message}
          </div>
        ))}
        <div class="form-row">
          <label>
            Timeout
            <input class="mono" value={b.timeout} placeholder="e.g. 30s" onInput={(e) => set((x) => ({ ...x, timeout: e.currentTarget.value }))} />
          </label>
          <label>
            Attempts
            <input class="mono" type="number" min={1} max={10} value={b.attempts} placeholder="e.g. 3" title="Attempts in all, 1 to 10 (default 1)" onInput={(e) => set((x) => ({ ...x, attempts: e.currentTarget.value }))} />
          </label>
          <label>
            Backoff
            <input class="mono" value={b.backoff} placeholder="e.g. 1s" onInput={(e) => set((x) => ({ ...x, backoff: e.currentTarget.value }))} />
          </label>
          <label class="inline" title="When the block fails for good, its output is {error, failed: true} and the run goes on">
            <input type="checkbox" checked={b.continueOnError} onChange={(e) => set((x) => ({ ...x, continueOnError: e.currentTarget.checked }))} />
            Continue on error
          </label>
        </div>
      </details>
    </Tag>
  )
}
