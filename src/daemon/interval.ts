// sendmail's brief interval format "[D+]HH:MM:SS" (pintvl), used by
// ${daemon_info}, delay= and xdelay= in logs.

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Formats milliseconds as "HH:MM:SS", with "D+" in front past a day. */
export function formatInterval(ms: number): string {
  let secs = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(secs / 86400);
  secs %= 86400;
  const text = `${pad2(Math.floor(secs / 3600))}:${pad2(Math.floor((secs % 3600) / 60))}:${pad2(secs % 60)}`;
  return days > 0 ? `${days}+${text}` : text;
}
