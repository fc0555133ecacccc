import { useState, type SyntheticEvent, type ReactNode } from "react";
import * as api from "../api";
import { useUi } from "../stores/ui";

export function Login(): ReactNode {
  const note = useUi((s) => s.authNote);
  const setAuth = useUi((s) => s.setAuth);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: SyntheticEvent) {
    e.preventDefault();
    if (!password || busy) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api.login(password);
      if (r.ok) setAuth("in");
      else setError(r.message);
    } catch {
      setError("The agent host is unreachable.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="login-box panel" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title" className="brand">
          J.A.R.V.I.S.
        </h1>
        <p className="muted">Proxmox command center</p>
        {note && (
          <p className="note" role="status">
            {note}
          </p>
        )}
        <label htmlFor="pw">Password</label>
        <input
          id="pw"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error ? "login-error" : undefined}
        />
        <button type="submit" className="btn primary" disabled={busy || !password}>
          {busy ? "Checking…" : "Log in"}
        </button>
        {error && (
          <p id="login-error" className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
