/** The API's JSON, as the handlers in functions/*_api answer it. */

export type Consent = { granted: boolean; source: string; at: string };
export type Identifier = { type: string; value: string; channel: string; attached_at: string };
export type PointsSummary = {
  available: number;
  pending: number;
  debt: number;
  lifetime_earned: number;
  tier: string | null;
};
export type TimelineEntry = {
  entity: string;
  event_id: string | null;
  occurred_at: string;
  channel: string | null;
  type: string;
  customer_id: string;
  summary: Record<string, string>;
};
export type Profile = {
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
  timezone: string | null;
  birthday: string | null;
  postal_code: string | null;
  preferred_channel: string | null;
  field_sources: Record<string, Record<string, string | boolean>>;
};
export type Customer = {
  customer_id: string;
  requested_id: string;
  status: string;
  created_at: string;
  profile: Profile;
  identifiers: Identifier[];
  consents: Record<string, Consent>;
  points: PointsSummary | null;
  absorbed_ids: string[];
  merges: string[];
  last_interactions: TimelineEntry[];
};
export type TimelinePage = { customer_id: string; entries: TimelineEntry[]; next_before: string | null };

export type MergeReview = {
  review_id: string;
  status: string;
  customer_ids: string[];
  survivor_id: string;
  problems: string[];
  event_id: string;
  channel: string;
  identifier_types: string[];
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  merge_id: string | null;
};
export type ReviewPage = { reviews: MergeReview[]; next_cursor: string | null };

export type Reservation = {
  reservation_id: string;
  customer_id: string;
  sku: string;
  location_id: string;
  quantity: number;
  status: string;
  created_at: string;
  hold_until: string | null;
  updated_at: string | null;
};

export type Money = Record<string, number | string>;
export type KpiSummary = {
  events: number;
  events_by_type: Record<string, number>;
  orders: number;
  revenue: Money;
  average_ticket: Money;
  sales_by_payment_method: Record<string, { orders: number; revenue: Money }>;
  refunds: number;
  refunded: Money;
  active_customers: number;
  ropo_orders: number;
  showrooming_orders: number;
};
export type KpiDay = { date: string; channels: Record<string, KpiSummary>; stores: Record<string, KpiSummary> };
export type KpiRange = {
  from: string;
  to: string;
  days: KpiDay[];
  totals: { channels: Record<string, KpiSummary>; stores: Record<string, KpiSummary> };
};

export type Lot = {
  order_id: string;
  channel: string;
  status: string;
  points: number;
  remaining: number;
  reversed: number;
  earned_at: string;
  age_days: number;
  pending_until: string | null;
  expires_on: string | null;
  origin_customer_id: string | null;
};
export type PointsDetail = PointsSummary & {
  customer_id: string;
  qualifying_points_12m?: number;
  next_tier?: string | null;
  points_to_next_tier?: number | null;
  lots: Lot[];
};
export type LedgerEntry = {
  kind: string;
  points: number;
  at: string;
  event_id?: string | null;
  order_id?: string | null;
  channel?: string | null;
  rule_ids?: string[];
  note?: string | null;
  seq?: string;
};
export type LedgerPage = { customer_id: string; entries: LedgerEntry[]; next_cursor?: string | null };
export type NotificationEntry = {
  message_id: string;
  intent: string;
  klass?: string;
  channel?: string | null;
  status: string;
  reason?: string | null;
  due?: string | null;
  at: string;
};
export type NotificationPage = { customer_id: string; history: NotificationEntry[] };
export type PointsRule = {
  rule_id: string;
  kind: string;
  description: string;
  channels: string[];
  currency: string | null;
  points_per_unit: string;
  categories: string[];
  skus: string[];
  active: boolean;
  [k: string]: unknown;
};
export type StockLocation = {
  location_id: string;
  on_hand: number;
  reserved: number;
  available: number;
  updated_at: string | null;
  counted_at?: string | null;
};
export type StockView = {
  sku: string;
  available: number;
  on_hand: number;
  reserved: number;
  online_available: number;
  low_stock_threshold?: number;
  locations: StockLocation[];
};

/** Reservation states a store can hand over (stock service: held, ready). */
export const COLLECTABLE = new Set(["held", "ready"]);
