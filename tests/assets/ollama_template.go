// Renders an Ollama Modelfile TEMPLATE with data shaped as Ollama passes it (api.Message,
// api.Tool; arguments and function schemas print as JSON, as Ollama's String methods do).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type Args map[string]any

func (a Args) String() string { b, _ := json.Marshal(map[string]any(a)); return string(b) }

type Fn struct {
	Name      string
	Arguments Args
}
type Call struct{ Function Fn }
type Msg struct {
	Role, Content string
	ToolCalls     []Call
}
type Schema map[string]any

func (s Schema) String() string { b, _ := json.Marshal(map[string]any(s)); return string(b) }

type Tool struct {
	Type     string
	Function Schema
}
type Data struct {
	System   string
	Tools    []Tool
	Messages []Msg
}

func main() {
	text, _ := os.ReadFile(os.Args[1])
	raw, _ := os.ReadFile(os.Args[2])
	var d Data
	if err := json.Unmarshal(raw, &d); err != nil {
		panic(err)
	}
	t := template.Must(template.New("m").Parse(string(text)))
	if err := t.Execute(os.Stdout, d); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
