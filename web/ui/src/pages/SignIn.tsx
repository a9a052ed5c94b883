import { useState } from 'preact/hooks'
import { post, type User } from '../api'
import { useApp } from '../app'
import { Redirect } from '../router'
import { ErrorBox } from '../ui'

export function SignIn() {
  const app = useApp()
  const [token, setToken] = useState('')
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const next = new URLSearchParams(location.search).get('next')
  if (app.user) return <Redirect to={next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/signin') ? next : '/'} />
  return (
    <div class="signin">
      <form
        class="card signin-card form"
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setErr(null)
          try {
            const s = await post<{ user: User; csrf: string }>('/ui/session', { token: token.trim() })
            setToken('')
            app.signedIn(s.user, s.csrf)
          } catch (e) {
            setErr(e)
          } finally {
            setBusy(false)
          }
        }}
      >
        <div class="brand big">
          <span class="logo" aria-hidden="true" />
          Hushflow
        </div>
        <h1>Sign in</h1>
        <p class="muted">
          Paste an API token (<code>hf_…</code>). It is exchanged for a browser session and is not kept by the page.
        </p>
        <label>
          API token
          <input
            type="password"
            name="token"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            required
            autoFocus
          />
        </label>
        <ErrorBox error={err} />
        <button class="btn primary wide" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">
          No token? Run <code>hushflow serve</code>: the first start prints an admin token. Then <code>hushflow token create</code>.
        </p>
      </form>
    </div>
  )
}
