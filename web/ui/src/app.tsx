import { createContext, type ComponentChildren } from 'preact'
import { useCallback, useContext, useEffect, useState } from 'preact/hooks'
import { get, post, del, setCSRF, onUnauthenticated, type User, type Project } from './api'
import { navigate } from './router'

export interface Toast {
  id: number
  kind: 'ok' | 'error'
  text: string
}

export interface AppState {
  user: User | null
  projects: Project[] | null
  projectsError: unknown
  environments: string[]
  environment: string
  setEnvironment: (e: string) => void
  reloadProjects: () => Promise<void>
  signedIn: (u: User, csrf: string) => void
  signOut: () => Promise<void>
  toast: (text: string, kind?: 'ok' | 'error') => void
}

const Ctx = createContext<AppState>(null as unknown as AppState)
export const useApp = () => useContext(Ctx)

const envKey = 'hushflow.environment' // a preference, never a credential

export function AppProvider({ children, onToasts }: { children: ComponentChildren; onToasts: (t: Toast[]) => void }) {
  const [user, setUser] = useState<User | null>(null)
  const [checked, setChecked] = useState(false)
  const [projects, setProjects] = useState<Project[] | null>(null)
  const [projectsError, setProjectsError] = useState<unknown>(null)
  const [environments, setEnvironments] = useState<string[]>(['development', 'staging', 'production'])
  const [environment, setEnv] = useState(localStorage.getItem(envKey) || 'development')
  const [toasts, setToasts] = useState<Toast[]>([])

  const toast = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = Date.now() + Math.random()
    setToasts((ts) => [...ts, { id, kind, text }])
    setTimeout(() => setToasts((ts) => ts.filter((t) => t.id !== id)), 4000)
  }, [])
  useEffect(() => onToasts(toasts), [toasts])

  const reloadProjects = useCallback(async () => {
    try {
      setProjectsError(null)
      const [ps, es] = await Promise.all([get<{ projects: Project[] }>('/api/v1/projects'), get<{ environments: any[] }>('/api/v1/environments')])
      setProjects(ps.projects ?? [])
      const names = (es.environments ?? []).map((e) => (typeof e === 'string' ? e : e.name))
      if (names.length) setEnvironments(names)
    } catch (e) {
      setProjectsError(e)
    }
  }, [])

  useEffect(() => {
    get<{ user: User; csrf: string }>('/ui/session')
      .then((s) => {
        setCSRF(s.csrf)
        setUser(s.user)
      })
      .catch(() => setUser(null))
      .finally(() => setChecked(true))
    return onUnauthenticated(() => {
      setUser(null)
      setCSRF('')
      if (!location.pathname.startsWith('/signin')) navigate('/signin?next=' + encodeURIComponent(location.pathname), true)
    })
  }, [])

  useEffect(() => {
    if (user) reloadProjects()
  }, [user])

  const state: AppState = {
    user,
    projects,
    projectsError,
    environments,
    environment,
    setEnvironment: (e) => {
      localStorage.setItem(envKey, e)
      setEnv(e)
    },
    reloadProjects,
    signedIn: (u, csrf) => {
      setCSRF(csrf)
      setUser(u)
    },
    signOut: async () => {
      try {
        await del('/ui/session')
      } finally {
        setCSRF('')
        setUser(null)
        setProjects(null)
        navigate('/signin')
      }
    },
    toast,
  }
  if (!checked) return null
  return <Ctx.Provider value={state}>{children}</Ctx.Provider>
}

export async function createProject(name: string) {
  return post('/api/v1/projects', { name })
}
