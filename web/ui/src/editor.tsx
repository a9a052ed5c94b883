import { useEffect, useRef } from 'preact/hooks'
import { EditorState, Compartment, type Extension } from '@codemirror/state'
import { EditorView, keymap, placeholder as cmPlaceholder, drawSelection, lineNumbers, highlightActiveLine } from '@codemirror/view'
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands'
import { javascript, javascriptLanguage } from '@codemirror/lang-javascript'
import { HighlightStyle, syntaxHighlighting, bracketMatching } from '@codemirror/language'
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, type Completion, type CompletionContext, type CompletionResult } from '@codemirror/autocomplete'
import { linter, forceLinting, type Diagnostic } from '@codemirror/lint'
import { tags as t } from '@lezer/highlight'

/** Kind of source: a field expression, a code block body, or an expr-lang condition. */
export type SourceKind = 'field' | 'code' | 'condition'

/** What autocomplete offers; the editor asks for it on every completion. */
export interface CompletionScope {
  secrets: { name: string; detail?: string }[]
  steps: { id: string; type: string }[]
  input: string[]
  env: string[]
}

export interface Located {
  line: number
  column: number
  message: string
}

const highlight = HighlightStyle.define([
  { tag: t.keyword, color: '#7c3aed' },
  { tag: [t.string, t.special(t.string)], color: '#047857' },
  { tag: t.number, color: '#b45309' },
  { tag: [t.bool, t.null], color: '#b45309' },
  { tag: t.comment, color: '#6b7280', fontStyle: 'italic' },
  { tag: [t.propertyName], color: '#1d4ed8' },
  { tag: [t.variableName], color: '#111827' },
  { tag: [t.function(t.variableName), t.function(t.propertyName)], color: '#0e7490' },
  { tag: t.operator, color: '#9d174d' },
  { tag: t.invalid, color: '#dc2626' },
])

const theme = EditorView.theme({
  '&': { fontSize: '13px', backgroundColor: 'var(--editor-bg)' },
  '.cm-content': { fontFamily: 'var(--mono)', padding: '6px 0', caretColor: '#111827' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '&.cm-focused': { outline: 'none' },
  '.cm-gutters': { backgroundColor: 'transparent', border: 'none', color: '#9ca3af' },
  '.cm-activeLine': { backgroundColor: 'transparent' },
  '.cm-tooltip-autocomplete ul li[aria-selected]': { backgroundColor: '#1f2937', color: 'white' },
})

// Fields are compiled as `return (\n<src>\n)` and code blocks as the body
// of an async function; parse the same way so that positions match.
const wrap: Record<'field' | 'code', [string, string]> = {
  field: ['(\n', '\n)'],
  code: ['(async function () {\n', '\n})'],
}

/** syntaxErrors parses src like the engine does and returns each error at line:column. */
export function syntaxErrors(src: string, kind: SourceKind): (Located & { from: number; to: number })[] {
  if (kind === 'condition' || src.trim() === '') return []
  const [pre, post] = wrap[kind]
  const text = pre + src + post
  const tree = javascriptLanguage.parser.parse(text)
  const out: (Located & { from: number; to: number })[] = []
  tree.iterate({
    enter(n) {
      if (!n.type.isError || out.length >= 3) return
      let from = Math.min(Math.max(n.from - pre.length, 0), src.length)
      let to = Math.min(Math.max(n.to - pre.length, from), src.length)
      const before = src.slice(0, from)
      const line = before.split('\n').length
      const column = from - (before.lastIndexOf('\n') + 1) + 1
      const ch = src.slice(from, Math.max(to, from + 1)).trim()
      const message = from >= src.length || !ch ? 'unexpected end of expression' : `unexpected “${ch.slice(0, 12)}”`
      if (!out.some((o) => o.from === from)) out.push({ from, to, line, column, message: 'Syntax error: ' + message })
    },
  })
  return out
}

function posOf(doc: EditorState['doc'], line: number, column: number) {
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines))
  return Math.min(l.from + Math.max(column - 1, 0), l.to)
}

// The per-response CSP nonce (see web.go): CodeMirror puts its styles in a
// <style> element, which the Content-Security-Policy admits only with it.
const cspNonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? ''

const ident = /^[A-Za-z_$][\w$]*$/

function completionSource(scope: () => CompletionScope, kind: SourceKind) {
  return (ctx: CompletionContext): CompletionResult | null => {
    // secrets["NA  -> names inside brackets
    const br = ctx.matchBefore(/secrets\[["'][\w-]*$/)
    if (br) {
      const q = br.text.slice(9)
      const quote = br.text[8]
      return {
        from: br.from + 9,
        options: scope().secrets.map((s) => ({ label: s.name, type: 'constant', detail: s.detail, apply: s.name + quote + ']' })),
        validFor: /^[\w-]*$/,
        filter: q !== '',
      }
    }
    const m = ctx.matchBefore(/[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\.?[\w$]*$/)
    if (!m) {
      return ctx.explicit ? { from: ctx.pos, options: roots(kind) } : null
    }
    const parts = m.text.split('.')
    const last = parts.pop() as string
    const from = m.to - last.length
    const s = scope()
    let options: Completion[] = []
    const path = parts.join('.')
    if (parts.length === 0) {
      if (last.length === 0 && !ctx.explicit) return null
      options = roots(kind)
    } else if (path === 'secrets') {
      options = s.secrets.map((x) => ({
        label: x.name,
        type: 'constant',
        detail: x.detail,
        apply: ident.test(x.name) ? x.name : undefined,
        info: 'secret (the value is never shown)',
      }))
      if (kind === 'code') options.push({ label: 'get', type: 'function', detail: '(name, {project, environment})' }, { label: 'mask', type: 'function', detail: '(value)' })
    } else if (path === 'steps') {
      options = s.steps.map((x) => ({ label: x.id, type: 'variable', detail: x.type + ' block' }))
    } else if (parts.length === 2 && parts[0] === 'steps') {
      options = [{ label: 'output', type: 'property', detail: 'the block’s output' }]
    } else if (parts.length === 3 && parts[0] === 'steps' && parts[2] === 'output') {
      const st = s.steps.find((x) => x.id === parts[1])
      if (st?.type === 'http') options = ['status', 'headers', 'body'].map((label) => ({ label, type: 'property' }))
    } else if (path === 'input') {
      options = s.input.map((k) => ({ label: k, type: 'property', detail: 'run input' }))
    } else if (path === 'env') {
      options = s.env.map((k) => ({ label: k, type: 'property', detail: 'flow variable' }))
    } else if (path === 'run') {
      options = ['id', 'flow', 'project', 'environment'].map((label) => ({ label, type: 'property' }))
    } else {
      return null
    }
    return { from, options, validFor: /^[\w$]*$/ }
  }
}

function roots(kind: SourceKind): Completion[] {
  const r: Completion[] = [
    { label: 'secrets', type: 'namespace', detail: 'secrets of this scope' },
    { label: 'input', type: 'namespace', detail: 'the run input' },
    { label: 'steps', type: 'namespace', detail: 'outputs of earlier blocks' },
    { label: 'env', type: 'namespace', detail: 'flow variables' },
    { label: 'run', type: 'namespace', detail: 'id, flow, project, environment' },
  ]
  if (kind === 'code') r.push({ label: 'console', type: 'namespace' })
  return r
}

export interface ExprEditorProps {
  value: string
  onChange: (v: string) => void
  kind: SourceKind
  scope: () => CompletionScope
  /** Problems from the server's validation, at their line:column. */
  problems?: Located[]
  placeholder?: string
  label: string
  id?: string
  onFocus?: () => void
  onBlur?: () => void
  onSave?: () => void
}

/** ExprEditor is a CodeMirror 6 editor for one expression field. */
export function ExprEditor(props: ExprEditorProps) {
  const host = useRef<HTMLDivElement>(null)
  const view = useRef<EditorView | null>(null)
  const latest = useRef(props)
  latest.current = props
  const problems = useRef<Located[]>(props.problems ?? [])

  useEffect(() => {
    const lint = linter(
      (v) => {
        const src = v.state.doc.toString()
        const ds: Diagnostic[] = syntaxErrors(src, latest.current.kind).map((e) => ({
          from: e.from,
          to: Math.max(e.to, Math.min(e.from + 1, src.length)),
          severity: 'error',
          message: `${e.line}:${e.column} ${e.message}`,
        }))
        for (const p of problems.current) {
          const from = p.line ? posOf(v.state.doc, p.line, p.column) : 0
          ds.push({ from, to: p.line ? Math.min(from + 1, src.length) : src.length, severity: 'error', message: (p.line ? `${p.line}:${p.column} ` : '') + p.message })
        }
        return ds
      },
      { delay: 250 },
    )
    const exts: Extension[] = [
      history(),
      drawSelection(),
      bracketMatching(),
      closeBrackets(),
      javascript(),
      syntaxHighlighting(highlight),
      theme,
      EditorView.cspNonce.of(cspNonce),
      EditorView.lineWrapping,
      autocompletion({ override: [completionSource(() => latest.current.scope(), props.kind)], activateOnTyping: true, icons: false }),
      lint,
      keymap.of([
        { key: 'Mod-s', preventDefault: true, run: () => (latest.current.onSave?.(), true) },
        { key: 'Mod-Enter', preventDefault: true, run: () => (latest.current.onSave?.(), true) },
        ...closeBracketsKeymap,
        ...completionKeymap,
        ...historyKeymap,
        ...defaultKeymap,
      ]),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) latest.current.onChange(u.state.doc.toString())
        if (u.focusChanged) (u.view.hasFocus ? latest.current.onFocus : latest.current.onBlur)?.()
      }),
      EditorView.contentAttributes.of({ 'aria-label': props.label, ...(props.id ? { id: props.id } : {}) }),
      new Compartment().of(props.placeholder ? cmPlaceholder(props.placeholder) : []),
    ]
    if (props.kind === 'code') exts.push(lineNumbers(), highlightActiveLine())
    const v = new EditorView({ state: EditorState.create({ doc: props.value, extensions: exts }), parent: host.current! })
    view.current = v
    return () => v.destroy()
  }, [])

  // The value prop seeds the document once: a parent that replaces the
  // content from outside remounts the editor (a new key). Syncing every
  // prop change back would fight the user's typing with stale echoes.

  useEffect(() => {
    problems.current = props.problems ?? []
    if (view.current) forceLinting(view.current)
  }, [JSON.stringify(props.problems ?? [])])

  return <div class={'expr-editor kind-' + props.kind} ref={host} />
}
