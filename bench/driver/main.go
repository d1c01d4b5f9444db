// Command driver is the benchmark's load generator for requests that differ
// from call to call (h2load sends one fixed body): it sends pre-encoded
// protobuf requests, picked at random from a file, as unary gRPC calls over
// grpc-go, and prints one JSON line with the figures. Built and run by
// bench/run.ts (GOPATH mode with Debian's grpc-go; no module proxy here).
//
// Usage: driver -addr HOST:PORT -method /pkg.Service/Method -bodies FILE
//
//	[-c connections] [-m concurrent calls per connection] [-d seconds]
//
// The bodies file holds messages, each preceded by its length (4 bytes, big endian).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rawCodec passes pre-encoded messages through untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

type result struct {
	Requests int            `json:"requests"`
	Codes    map[string]int `json:"codes"`
	Rps      float64        `json:"rps"`
	P50Ms    float64        `json:"p50Ms"`
	P99Ms    float64        `json:"p99Ms"`
}

func readBodies(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	for len(data) >= 4 {
		n := binary.BigEndian.Uint32(data)
		if int(n) > len(data)-4 {
			return nil, fmt.Errorf("truncated bodies file")
		}
		bodies = append(bodies, data[4:4+n])
		data = data[4+n:]
	}
	if len(bodies) == 0 {
		return nil, fmt.Errorf("no bodies in %s", path)
	}
	return bodies, nil
}

func main() {
	addr := flag.String("addr", "", "server address")
	method := flag.String("method", "", "full method path")
	bodiesPath := flag.String("bodies", "", "file of length-prefixed request messages")
	conns := flag.Int("c", 4, "connections")
	streams := flag.Int("m", 8, "concurrent calls per connection")
	seconds := flag.Float64("d", 10, "duration in seconds")
	flag.Parse()
	bodies, err := readBodies(*bodiesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	var mu sync.Mutex
	var latencies []time.Duration
	codeCounts := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	for c := 0; c < *conns; c++ {
		conn, err := grpc.Dial(*addr, grpc.WithInsecure(), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer conn.Close()
		for s := 0; s < *streams; s++ {
			wg.Add(1)
			go func(seed int64) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(seed))
				own := make([]time.Duration, 0, 65536)
				counts := map[string]int{}
				for time.Now().Before(deadline) {
					request := bodies[rng.Intn(len(bodies))]
					var response []byte
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					began := time.Now()
					err := conn.Invoke(ctx, *method, &request, &response)
					own = append(own, time.Since(began))
					cancel()
					counts[status.Code(err).String()]++
				}
				mu.Lock()
				latencies = append(latencies, own...)
				for k, v := range counts {
					codeCounts[k] += v
				}
				mu.Unlock()
			}(int64(c*1000 + s + 1))
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pick := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(latencies)))
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return float64(latencies[i].Microseconds()) / 1000
	}
	out, _ := json.Marshal(result{
		Requests: len(latencies),
		Codes:    codeCounts,
		Rps:      float64(codeCounts[codes.OK.String()]) / elapsed,
		P50Ms:    pick(50),
		P99Ms:    pick(99),
	})
	fmt.Println(string(out))
}
