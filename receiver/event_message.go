package receiver

import (
	"encoding/json"

	"github.com/ssfd/ssfd/schemas"
)

// EventMessage is the JSON the NATS and webhook sinks send for each verified event: the event with the SET
// claims a consumer needs to act on it and to de-duplicate it.
type EventMessage struct {
	// Registration names the transmitter registration the SET came through.
	Registration string `json:"registration"`
	// Issuer, JTI and Txn are the SET's iss, jti and txn.
	Issuer string `json:"iss"`
	JTI    string `json:"jti"`
	Txn    string `json:"txn,omitempty"`
	// IssuedAt is the SET's iat.
	IssuedAt schemas.NumericDate `json:"iat"`
	// EventType is the event type URI and Event its payload.
	EventType schemas.EventType `json:"event_type"`
	Event     json.RawMessage   `json:"event"`
	// Subject is the SET's sub_id.
	Subject schemas.Subject `json:"sub_id"`
}

// NewEventMessage builds the sink message of a delivery.
func NewEventMessage(d Delivery) EventMessage {
	return EventMessage{Registration: d.Registration, Issuer: d.SET.Issuer, JTI: d.SET.ID, Txn: d.SET.Txn,
		IssuedAt: d.SET.IssuedAt, EventType: d.SET.Event.Type, Event: d.SET.Event.Payload, Subject: d.SET.Subject}
}
