import { useEffect, useState } from 'preact/hooks'
import type { ComponentChildren } from 'preact'

// A small client router over the History API; the Go server answers every
// non-API path with index.html.

const listeners = new Set<() => void>()

export function navigate(to: string, replace = false) {
  if (to === location.pathname + location.search) return
  if (replace) history.replaceState(null, '', to)
  else history.pushState(null, '', to)
  listeners.forEach((f) => f())
  window.scrollTo(0, 0)
}

window.addEventListener('popstate', () => listeners.forEach((f) => f()))

export function useLocation() {
  const [loc, setLoc] = useState({ path: location.pathname, search: location.search })
  useEffect(() => {
    const f = () => setLoc({ path: location.pathname, search: location.search })
    listeners.add(f)
    f() // a child may have navigated before this effect subscribed
    return () => {
      listeners.delete(f)
    }
  }, [])
  return loc
}

/** match returns the named segments of path for a pattern like /p/:project/flows. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/').filter(Boolean)
  const xs = path.split('/').filter(Boolean)
  if (ps.length !== xs.length) return null
  const out: Record<string, string> = {}
  for (let i = 0; i < ps.length; i++) {
    if (ps[i].startsWith(':')) {
      try {
        out[ps[i].slice(1)] = decodeURIComponent(xs[i])
      } catch {
        return null
      }
    } else if (ps[i] !== xs[i]) return null
  }
  return out
}

/** Redirect navigates once it has rendered (never during a render). */
export function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to])
  return null
}

type LinkProps = { href: string; children?: ComponentChildren; class?: string; title?: string; onClick?: (e: MouseEvent) => void; [attr: string]: unknown }

export function Link({ href, children, onClick, ...rest }: LinkProps) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e: MouseEvent) => {
        if (onClick) onClick(e)
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
        e.preventDefault()
        navigate(href)
      }}
    >
      {children}
    </a>
  )
}
