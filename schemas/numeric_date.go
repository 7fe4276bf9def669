package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// NumericDate is a JSON number of seconds since the Unix epoch (RFC 7519 §2), as used by the SET claims iat and
// toe and the CAEP event_timestamp. Fractions are accepted on input (spec/ssf.md GO-02); whole seconds are emitted
// as integers. The zero value means absent.
//
// A value past the year 9999 cannot be seconds; when it is a time in milliseconds (as in CAEP 1.0's own examples,
// which many transmitters copy: "event_timestamp": 1615304991643) it is read as milliseconds rather than refused.
type NumericDate struct {
	t time.Time
}

// NewNumericDate returns t as a NumericDate, keeping millisecond precision.
func NewNumericDate(t time.Time) NumericDate {
	return NumericDate{t: t.Truncate(time.Millisecond).UTC()}
}

// Unix returns the NumericDate of sec seconds since the epoch.
func Unix(sec int64) NumericDate { return NumericDate{t: time.Unix(sec, 0).UTC()} }

// Time returns the instant as a time.Time (the zero time when absent).
func (d NumericDate) Time() time.Time { return d.t }

// IsZero reports whether the date is absent.
func (d NumericDate) IsZero() bool { return d.t.IsZero() }

// MarshalJSON writes a JSON number: an integer for whole seconds, otherwise seconds with milliseconds.
func (d NumericDate) MarshalJSON() ([]byte, error) {
	if d.t.Nanosecond() == 0 {
		return strconv.AppendInt(nil, d.t.Unix(), 10), nil
	}
	return strconv.AppendFloat(nil, float64(d.t.UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads a non-negative JSON number, integer or fraction.
func (d *NumericDate) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] < '0' && data[0] != '-' || data[0] > '9' {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: numericDateType}
	}
	f, err := strconv.ParseFloat(string(data), 64)
	if err == nil && f > maxNumericDate && f <= maxNumericDate*1000 {
		f /= 1000 // milliseconds, see the type's documentation
	}
	if err != nil || f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return fmt.Errorf("%w: %s is not a NumericDate", ErrInvalid, data)
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC()
	return nil
}

// maxNumericDate is the year 9999; later dates cannot be represented and are refused.
const maxNumericDate = 253402300799

var numericDateType = typeOf[NumericDate]()
