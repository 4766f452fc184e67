// The CPUID model (owner: system engineer). The signature is also the reset value of EDX.

/** Family 6, model 14 (Core Duo "Yonah"), stepping 8: EAX of leaf 1 and EDX after reset. */
export const CPUID_SIGNATURE = 0x6e8;
