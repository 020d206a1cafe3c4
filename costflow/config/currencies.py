"""ISO 4217 currency codes a billing account may be invoiced in.

The active codes of the ISO 4217 list (SIX, amendments up to 2025), plus the codes withdrawn
since 2023 that old billing months can still carry (HRK, SLL, ZWL, ANG, CUC). The fund and
precious-metal codes are kept (they are valid ISO codes); XTS (testing) and XXX (no currency)
are not, because no bill is in them. A three-letter check alone would let a typo such as
``UDS`` through, and the ingest would then flag every row of the export as asserted in it.
"""

from __future__ import annotations

# One block of codes reads like the ISO table; a list of 180 quoted strings would not.
_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR
ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
"""
ISO_4217: frozenset[str] = frozenset(_CODES.split())
