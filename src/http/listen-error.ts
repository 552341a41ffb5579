/** A listener could not bind; the message names the setting to change. */
export class ListenError extends Error {
  constructor(message: string, cause: Error) {
    super(message, { cause });
    this.name = 'ListenError';
  }
}
