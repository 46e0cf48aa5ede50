import { Address6 } from 'ip-address'
import { isIPv6 } from 'node:net'

/**
 * A client address as the limits count it: an IPv4 address as it is, an IPv4-mapped IPv6 address as its IPv4 form,
 * any other IPv6 address as its /64 (one subscriber's network hands out a /64, so rotating addresses within it
 * would otherwise buy a fresh budget each time). What is not an address (a test's fake peer) passes unchanged.
 */
export function addressKey (ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return new Address6(`${address.correctForm()}/64`).startAddress().correctForm() + '/64'
}
