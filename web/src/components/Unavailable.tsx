import type { ReactNode } from "react";

/** A backend this agent host does not have (its endpoint answers 404). */
export function Unavailable({ what }: { what: string }): ReactNode {
  return (
    <p className="muted tiny unavailable" role="status" data-testid="unavailable">
      {what} not available on this agent host.
    </p>
  );
}
