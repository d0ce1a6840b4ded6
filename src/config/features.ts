// FEATURE names a .mc file may use, and which of them Posthorn enforces.

/**
 * FEATUREs whose behaviour Posthorn implements. Every other known FEATURE is
 * accepted and reported by loadConfig() in `notices`. Parts that implement a
 * FEATURE add its name here.
 */
export const ENFORCED_FEATURES = new Set<string>([
  'nocanonify', 'use_cw_file', 'always_add_domain', 'accept_unqualified_senders',
  // Access map and connection policy (src/policy/, src/server/connect.ts).
  'access_db', 'blacklist_recipients', 'delay_checks', 'greet_pause', 'conncontrol', 'ratecontrol',
  'mtamark', 'use_client_ptr', 'dnsbl', 'enhdnsbl',
  // Local delivery and the address tables (src/aliases/, src/delivery/).
  'local_lmtp', 'mailertable', 'virtusertable', 'virtuser_entire_domain', 'genericstable',
  'generics_entire_domain', 'masquerade_envelope', 'masquerade_entire_domain', 'limited_masquerade',
]);

/** The cf/feature files of sendmail 8.13, plus a few later ones common in Debian. */
export const KNOWN_FEATURES = new Set<string>([
  'accept_unqualified_senders', 'accept_unresolvable_domains', 'access_db', 'allmasquerade',
  'always_add_domain', 'bestmx_is_local', 'bitdomain', 'blacklist_recipients', 'compat_check',
  'conncontrol', 'delay_checks', 'dnsbl', 'domaintable', 'enhdnsbl', 'generics_entire_domain',
  'genericstable', 'greet_pause', 'ldap_routing', 'limited_masquerade', 'local_lmtp',
  'local_no_masquerade', 'local_procmail', 'lookupdotdomain', 'loose_relay_check', 'mailertable',
  'masquerade_entire_domain', 'masquerade_envelope', 'msp', 'mtamark', 'no_default_msa',
  'nocanonify', 'nodns', 'nopercenthack', 'notsticky', 'nouucp', 'nullclient',
  'preserve_local_plus_detail', 'preserve_luser_host', 'promiscuous_relay', 'queuegroup',
  'ratecontrol', 'rbl', 'redirect', 'relay_based_on_MX', 'relay_entire_domain', 'relay_hosts_only',
  'relay_local_from', 'relay_mail_from', 'smrsh', 'stickyhost', 'use_client_ptr', 'use_ct_file',
  'use_cw_file', 'uucpdomain', 'virtuser_entire_domain', 'virtusertable',
  // Added after 8.13 (8.14 and later), found in current Debian configurations.
  'authinfo', 'badmx', 'block_bad_helo', 'require_rdns',
]);
