package schemas

// DeliveryMethod is the URI naming how SETs travel on a stream (SSF 1.0 §6.1).
type DeliveryMethod string

// The delivery methods of SSF 1.0 §6.1 and the NATS JetStream method of ssfd.
const (
	// DeliveryPush is RFC 8935 push: the transmitter POSTs each SET to the receiver's endpoint_url.
	DeliveryPush DeliveryMethod = "urn:ietf:rfc:8935"
	// DeliveryPoll is RFC 8936 poll: the receiver POSTs poll requests to the transmitter's endpoint_url.
	DeliveryPoll DeliveryMethod = "urn:ietf:rfc:8936"
	// DeliveryNATS publishes each SET to the JetStream subject ssf.set.<stream_id> (an ssfd extension).
	DeliveryNATS DeliveryMethod = "urn:ssfd:delivery:nats"
)

// legacyDeliveryMethods maps the RISC-era method URIs to their SSF 1.0 names (spec/ssf.md DLV-04).
var legacyDeliveryMethods = map[DeliveryMethod]DeliveryMethod{
	"https://schemas.openid.net/secevent/risc/delivery-method/push": DeliveryPush,
	"https://schemas.openid.net/secevent/risc/delivery-method/poll": DeliveryPoll,
}

// Normalize returns the SSF 1.0 name of a legacy method URI, and any other method unchanged, so legacy names
// are accepted on input and never emitted.
func (m DeliveryMethod) Normalize() DeliveryMethod {
	if modern, ok := legacyDeliveryMethods[m]; ok {
		return modern
	}
	return m
}

// Delivery is the delivery object of a stream configuration (SSF 1.0 §6.1).
type Delivery struct {
	// Method is the delivery method URI.
	Method DeliveryMethod `json:"method"`
	// EndpointURL is the receiver's push URL (push) or the transmitter's poll URL (poll).
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is, for push, the whole value the transmitter sends as the Authorization header
	// (spec/ssf.md DLV-01). It is a secret: never log it.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}
