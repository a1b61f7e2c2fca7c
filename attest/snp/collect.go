package snp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	"github.com/google/go-sev-guest/kds"
)

// QuoteProvider gets an extended SEV-SNP report (the report followed by
// the host's certificate table) for the given REPORT_DATA. go-sev-guest's
// client.QuoteProvider implements it.
type QuoteProvider interface {
	GetRawQuote(reportData [64]byte) ([]byte, error)
}

// Collector gets SEV-SNP evidence from the guest it runs in.
type Collector struct {
	Provider QuoteProvider
}

// NewCollector returns a collector for the running guest: configfs-tsm
// (Linux 6.7 and later) when the kernel has it, else the /dev/sev-guest
// ioctl interface.
func NewCollector() (*Collector, error) {
	qp, err := client.GetQuoteProvider()
	if err != nil {
		return nil, fmt.Errorf("no SEV-SNP guest interface (configfs-tsm or /dev/sev-guest): %v; is this an SEV-SNP guest?", err)
	}
	if !qp.IsSupported() {
		return nil, errors.New("the kernel's SEV-SNP guest interface is not supported here; is this an SEV-SNP guest?")
	}
	return &Collector{Provider: qp}, nil
}

// Collect gets a report carrying reportData and the certificates the host
// provides (VCEK or VLEK, ASK, ARK) from the extended report.
func (c *Collector) Collect(reportData [64]byte) (*Evidence, error) {
	raw, err := c.Provider.GetRawQuote(reportData)
	if err != nil {
		return nil, fmt.Errorf("getting the SEV-SNP report: %v", err)
	}
	return EvidenceFromExtendedReport(raw)
}

// EvidenceFromExtendedReport splits an extended report — the 1184-byte
// report followed by the GUID-indexed certificate table of the SEV-SNP
// firmware ABI — into Evidence. Entries that are not certificates of the
// AMD chain (such as extra platform info) are left out.
func EvidenceFromExtendedReport(data []byte) (*Evidence, error) {
	if len(data) < abi.ReportSize {
		return nil, fmt.Errorf("extended report is %d bytes, shorter than a %d-byte report", len(data), abi.ReportSize)
	}
	if len(data) > MaxReportSize+MaxCerts*MaxCertSize {
		return nil, fmt.Errorf("extended report is %d bytes; too large", len(data))
	}
	e := &Evidence{Report: data[:abi.ReportSize]}
	if _, err := ParseReport(e.Report); err != nil {
		return nil, err
	}
	if rest := data[abi.ReportSize:]; len(rest) > 0 && !allZero(rest) {
		var table abi.CertTable
		if err := table.Unmarshal(rest); err != nil {
			return nil, fmt.Errorf("extended report certificate table: %v", err)
		}
		chain := table.Proto()
		for _, der := range [][]byte{chain.GetVcekCert(), chain.GetVlekCert(), chain.GetAskCert(), chain.GetArkCert()} {
			if len(der) > 0 {
				e.Certs = append(e.Certs, der)
			}
		}
	}
	if _, err := Parse(e); err != nil {
		return nil, err
	}
	return e, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// KDSBaseURL is AMD's Key Distribution Service.
const KDSBaseURL = "https://kdsintf.amd.com"

// FetchCRL gets the current VCEK CRL of a product line ("Milan", "Genoa",
// "Turin") from AMD KDS at baseURL (KDSBaseURL, or a mirror), so that it can
// be stapled. The caller checks it like any stapled CRL.
func FetchCRL(ctx context.Context, hc *http.Client, baseURL, product string) ([]byte, error) {
	url := kds.CrlLinkByKey(product, abi.VcekReportSigner)
	if baseURL != KDSBaseURL {
		url = baseURL + url[len(KDSBaseURL):]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the %s CRL: %v", product, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the %s CRL from %s: %s", product, url, resp.Status)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRLSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the %s CRL: %v", product, err)
	}
	if len(der) > MaxCRLSize {
		return nil, fmt.Errorf("the %s CRL from %s is larger than %d bytes", product, url, MaxCRLSize)
	}
	ders, err := ParseCRLs(der)
	if err != nil {
		return nil, fmt.Errorf("the %s CRL from %s: %v", product, url, err)
	}
	return ders[0], nil
}
