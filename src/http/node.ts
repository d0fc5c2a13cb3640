import type { IncomingMessage, ServerResponse } from 'node:http';

/** A Node request handler; the HTTP concerns that must act before Yoga (ids, body limits) wrap one. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;
