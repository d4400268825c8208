/** A stand-in for the EventHub that a test drives by hand, for JobFeed tests. */
import type { EventHub, HubEvent } from '../../src/events/hub'

/** The one thing JobFeed takes from a hub, a subscription, and `hear` to send it an event. */
export function drivenHub(): { hub: EventHub; hear: (event: HubEvent) => void } {
  let listener: (event: HubEvent) => void = () => {}
  const hub = {
    subscribe(l: (event: HubEvent) => void) {
      listener = l
      return () => {}
    },
  } as unknown as EventHub
  return { hub, hear: (event) => listener(event) }
}
