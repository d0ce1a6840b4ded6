// The product version, shown in the greeting ($v), Received: and --version.
export const VERSION = '0.1.0';
