/** `text` cut to `max` characters, an ellipsis telling it was; whole when it fits. */
export function cutText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
