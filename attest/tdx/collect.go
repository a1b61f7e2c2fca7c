package tdx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/go-tdx-guest/client"
)

// Where Linux exposes the TD's CCEL ACPI table and its event log.
const (
	CCELTablePath = "/sys/firmware/acpi/tables/CCEL"
	CCELDataPath  = "/sys/firmware/acpi/tables/data/CCEL"
)

// QuoteProvider gets a TDX quote for the given REPORTDATA. go-tdx-guest's
// client.LinuxConfigFsQuoteProvider implements it.
type QuoteProvider interface {
	GetRawQuote(reportData [64]byte) ([]byte, error)
}

// Collector gets TDX evidence from the TD it runs in, with Intel's
// collateral: given, or fetched from Intel PCS or a PCCS (PCS).
type Collector struct {
	Provider QuoteProvider
	// Collateral is stapled to every quote (see [Collateral]); nil staples none.
	Collateral []byte
	// CCELTable and CCELData are the CCEL files to staple; empty: none.
	CCELTable, CCELData string
	// PCS, when set and Collateral is nil, fetches the collateral of each
	// quote from Intel PCS or a PCCS at collection (keep what it staples,
	// in Collateral, for the next quotes: it is the platform's).
	PCS *PCS
}

// NewCollector returns a collector for the running TD through configfs-tsm
// (Linux 6.7 and later), stapling the CCEL event log when the firmware
// publishes one.
func NewCollector(collateral []byte) (*Collector, error) {
	qp, err := client.GetQuoteProvider()
	if err != nil {
		return nil, fmt.Errorf("no TDX quote interface (configfs-tsm): %v; is this a TDX guest?", err)
	}
	if err := qp.IsSupported(); err != nil {
		return nil, fmt.Errorf("the kernel's TDX quote interface is not supported here (%v); is this a TDX guest with a Quoting Enclave on the host?", err)
	}
	if len(collateral) > 0 {
		if _, err := ParseCollateral(collateral); err != nil {
			return nil, err
		}
	}
	c := &Collector{Provider: qp, Collateral: collateral}
	if _, err := os.Stat(CCELDataPath); err == nil {
		c.CCELTable, c.CCELData = CCELTablePath, CCELDataPath
	}
	return c, nil
}

// Collect gets a quote carrying reportData, with the collector's
// collateral and CCEL event log.
func (c *Collector) Collect(reportData [64]byte) (*Evidence, error) {
	q, err := c.Provider.GetRawQuote(reportData)
	if err != nil {
		return nil, fmt.Errorf("getting the TDX quote: %v", err)
	}
	pq, err := ParseQuote(q)
	if err != nil {
		return nil, fmt.Errorf("the TDX quote the platform returned: %v", err)
	}
	if pq.Body.ReportData != reportData {
		return nil, errors.New("the TDX quote the platform returned does not carry the REPORTDATA asked for")
	}
	e := &Evidence{Quote: q, Collateral: c.Collateral}
	if e.Collateral == nil && c.PCS != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pcsTimeout)
		defer cancel()
		if e.Collateral, err = c.PCS.Fetch(ctx, q); err != nil {
			return nil, fmt.Errorf("the collateral for the quote: %v", err)
		}
	}
	if c.CCELData != "" {
		if e.CCEL, err = readBounded(c.CCELData, MaxCCELSize); err != nil {
			return nil, fmt.Errorf("CCEL event log: %v", err)
		}
		if c.CCELTable != "" {
			if e.CCELTable, err = readBounded(c.CCELTable, MaxCCELTableSize); err != nil {
				return nil, fmt.Errorf("CCEL ACPI table: %v", err)
			}
		}
	}
	if _, err := Parse(e); err != nil {
		return nil, err
	}
	return e, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
