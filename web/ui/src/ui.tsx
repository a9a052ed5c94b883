import type { ComponentChildren } from 'preact'
import { useLayoutEffect, useRef } from 'preact/hooks'
import { ApiError } from './api'

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  )
}

export function ErrorBox({ error, retry, title }: { error: unknown; retry?: () => void; title?: string }) {
  if (!error) return null
  const msg = error instanceof Error ? error.message : String(error)
  const rid = error instanceof ApiError ? error.code : ''
  return (
    <div class="alert error" role="alert">
      <strong>{title ?? (rid === 'network' ? 'Offline' : 'Something went wrong')}</strong>
      <span>{msg}</span>
      {retry && (
        <button type="button" class="btn small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  )
}

export function Empty({ title, children, action }: { title: string; children?: ComponentChildren; action?: ComponentChildren }) {
  return (
    <div class="empty">
      <div class="empty-icon" aria-hidden="true">
        ◌
      </div>
      <h3>{title}</h3>
      {children && <p>{children}</p>}
      {action}
    </div>
  )
}

export function Pill({ status }: { status: string }) {
  return <span class={'pill pill-' + status}>{status.replace('_', ' ')}</span>
}

export function PageHeader({ title, sub, children }: { title: ComponentChildren; sub?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <header class="page-header">
      <div>
        <h1>{title}</h1>
        {sub && <p class="sub">{sub}</p>}
      </div>
      <div class="actions">{children}</div>
    </header>
  )
}

/** Modal is a dialog that traps Escape and focuses its first field. The
 * listener is attached before the browser paints the dialog (a layout
 * effect), so an Escape pressed as soon as it shows closes it. */
export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null)
  useLayoutEffect(() => {
    const prev = document.activeElement as HTMLElement | null
    const el = ref.current?.querySelector<HTMLElement>('input:not([type=hidden]), textarea, select, button.primary, button')
    el?.focus()
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose()
    }
    window.addEventListener('keydown', onKey)
    return () => {
      window.removeEventListener('keydown', onKey)
      prev?.focus()
    }
  }, [])
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <header>
          <h2>{title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  )
}

export function JSONView({ value, label }: { value: unknown; label?: string }) {
  if (value === undefined) return null
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2)
  return (
    <div class="json">
      {label && <div class="json-label">{label}</div>}
      <pre>{text}</pre>
    </div>
  )
}

export function ago(ts?: string) {
  if (!ts) return ''
  const d = new Date(ts)
  const s = (Date.now() - d.getTime()) / 1000
  if (s < 5) return 'just now'
  if (s < 60) return `${Math.floor(s)}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`
  return d.toLocaleDateString()
}

export function duration(from?: string, to?: string) {
  if (!from) return ''
  const ms = (to ? new Date(to).getTime() : Date.now()) - new Date(from).getTime()
  if (ms < 1000) return `${ms} ms`
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.floor(ms / 60000)}m ${Math.floor((ms % 60000) / 1000)}s`
}

export function fullTime(ts?: string) {
  return ts ? new Date(ts).toLocaleString() : ''
}
