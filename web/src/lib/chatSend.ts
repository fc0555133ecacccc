import { connection, storedSession } from "../connection";
import { useChat } from "../stores/chat";

/** Send a chat message on the current session; false when not connected. */
export function sendChat(text: string): boolean {
  const t = text.trim();
  if (!t) return false;
  const sid = useChat.getState().sessionId ?? storedSession();
  if (!connection.send(sid ? { type: "send", text: t, session_id: sid } : { type: "send", text: t })) return false;
  useChat.getState().addUser(t);
  return true;
}
