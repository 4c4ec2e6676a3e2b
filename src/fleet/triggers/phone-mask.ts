/**
 * A phone number as shown where whoever holds a link may read it: the country and operator code
 * and the last two digits, the rest hidden (`79991234500` → `+7 999 ••• •• 00`). Enough for the
 * person who scanned to recognise their phone, not enough to call it.
 */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, "");
  if (digits.length < 4) return "+•••";
  const lead = digits.slice(0, Math.max(1, digits.length - 7));
  const grouped = lead.length > 3 ? `${lead.slice(0, -3)} ${lead.slice(-3)}` : lead;
  return `+${grouped} ••• •• ${digits.slice(-2)}`;
}

export const maskedOrNull = (phone: string | null): string | null => (phone === null ? null : maskPhone(phone));
