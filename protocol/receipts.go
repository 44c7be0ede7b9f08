package protocol

import "time"

// Read receipts. A message moves through stages a sender can see, each a
// fact the relay records: stored in the recipient's mailbox, delivered
// (the recipient's client acked it: it holds it), read (the client said
// the message was shown to its agent's model). Clients of the older
// protocol have no read concept: the relay counts a message read when
// they ack it.
const (
	TypeRead     = "read"     // client → relay: messages shown to the model
	TypeReceipts = "receipts" // both ways: request by message id, then the receipts
)

// Receipt states.
const (
	ReceiptStored    = "stored"    // in the recipient's mailbox, not yet held by its client
	ReceiptDelivered = "delivered" // held by the recipient's client, not yet shown to its model
	ReceiptRead      = "read"      // shown to the recipient's model
)

// Limits of the receipt frames.
const (
	// MaxReadIDs is the most message ids one read frame names.
	MaxReadIDs = 1000
	// MaxReceiptIDs is the most message ids one receipts request names.
	MaxReceiptIDs = 100
)

// Read tells the relay that the client showed messages of its mailbox to
// its agent's model: by id, or every message up to seq Upto. Ids that are
// not in the client's mailbox are ignored. There is no answer.
//
//	{"type":"read","ids":["0193a1b2-0000-7000-8000-000000000002"]}
type Read struct {
	IDs  []string `json:"ids,omitempty"`
	Upto uint64   `json:"upto,omitempty"`
}

// Receipts asks the relay (client → relay: Ref and IDs) what became of
// messages the client sent, and carries the answer (relay → client: Ref and
// Receipts, one per message and recipient). A message the client did not
// send, or that is gone (pruned, cleared by its recipient), has no receipt.
type Receipts struct {
	Ref      string    `json:"ref,omitempty"`
	IDs      []string  `json:"ids,omitempty"`
	Receipts []Receipt `json:"receipts,omitempty"`
}

// Receipt is the state of one message in one recipient's mailbox.
type Receipt struct {
	ID          string    `json:"id"`    // message id
	To          string    `json:"to"`    // recipient
	State       string    `json:"state"` // ReceiptStored, ReceiptDelivered or ReceiptRead
	StoredAt    time.Time `json:"stored_at"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	ReadAt      time.Time `json:"read_at,omitzero"`
}

func (*Read) Type() string     { return TypeRead }
func (*Receipts) Type() string { return TypeReceipts }

func (f *Read) validate(Limits) error {
	if len(f.IDs) == 0 && f.Upto == 0 {
		return missing(TypeRead, "ids")
	}
	if len(f.IDs) > MaxReadIDs {
		return errorf(CodeTooLarge, "read names %d messages; the limit is %d", len(f.IDs), MaxReadIDs)
	}
	for _, id := range f.IDs {
		if err := ValidateMessageID(id); err != nil {
			return err
		}
	}
	return nil
}

func (f *Receipts) validate(Limits) error {
	if len(f.IDs) > MaxReceiptIDs {
		return errorf(CodeTooLarge, "receipts names %d messages; the limit is %d", len(f.IDs), MaxReceiptIDs)
	}
	for _, id := range f.IDs {
		if err := ValidateMessageID(id); err != nil {
			return err
		}
	}
	return nil
}
