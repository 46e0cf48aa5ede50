/**
 * RFC 6570 URI templates as matchers, precise enough to route a URI to the service whose template it fits. A
 * template comes from an upstream and a URI from a client, so neither may make matching slow: a regular expression
 * of a template such as `{a}{b}{c}` backtracks through every way of splitting the text. This compiles the template
 * to a tiny program and runs it breadth-first (a Pike VM): each character of the URI is looked at once per program
 * step, so a match costs at most the URI's length times the template's.
 */

type CharTest = (c: number) => boolean

type Instruction =
  | { op: 'char', c: number }
  | { op: 'class', test: CharTest }
  | { op: 'split', a: number, b: number }
  | { op: 'jump', to: number }
  | { op: 'match' }

export interface TemplateMatcher {
  test (uri: string): boolean
}

const SLASH = 47
const QUESTION = 63
const HASH = 35
const DOT = 46
const SEMICOLON = 59
const AMPERSAND = 38

const any: CharTest = () => true
/** A simple expansion's value: no /, ? or #. */
const segment: CharTest = (c) => c !== SLASH && c !== QUESTION && c !== HASH
const label: CharTest = (c) => segment(c) && c !== DOT
const parameter: CharTest = (c) => segment(c) && c !== SEMICOLON
const queryStart: CharTest = (c) => c === QUESTION || c === AMPERSAND

export function compileTemplate (template: string): TemplateMatcher {
  const program: Instruction[] = []
  const literal = (text: string) => { for (let i = 0; i < text.length; i++) program.push({ op: 'char', c: text.charCodeAt(i) }) }
  /** test* */
  const star = (test: CharTest) => {
    const split = program.length
    program.push({ op: 'split', a: split + 1, b: -1 }, { op: 'class', test }, { op: 'jump', to: split })
    ;(program[split] as { b: number }).b = program.length
  }
  /** (first test*)* when `repeat`, else (first test*)? */
  const group = (first: CharTest, test: CharTest, repeat: boolean) => {
    const split = program.length
    program.push({ op: 'split', a: split + 1, b: -1 }, { op: 'class', test: first })
    star(test)
    if (repeat) program.push({ op: 'jump', to: split })
    ;(program[split] as { b: number }).b = program.length
  }
  let last = 0
  for (const match of template.matchAll(/\{([+#./;?&]?)([^}]*)\}/g)) {
    literal(template.slice(last, match.index))
    switch (match[1]) {
      case '+': case '#': star(any); break
      case '?': case '&': group(queryStart, any, false); break
      case '/': group(c => c === SLASH, segment, true); break
      case '.': group(c => c === DOT, label, true); break
      case ';': group(c => c === SEMICOLON, parameter, true); break
      default: star(segment)
    }
    last = (match.index as number) + match[0].length
  }
  literal(template.slice(last))
  program.push({ op: 'match' })
  return { test: (uri) => run(program, uri) }
}

/** Runs the program over `uri`, all threads at once. */
function run (program: Instruction[], uri: string): boolean {
  let current: number[] = []
  let next: number[] = []
  const seen = new Int32Array(program.length).fill(-1)
  let generation = 0
  const add = (list: number[], pc: number) => {
    if (seen[pc] === generation) return
    seen[pc] = generation
    const instruction = program[pc] as Instruction
    if (instruction.op === 'jump') add(list, instruction.to)
    else if (instruction.op === 'split') {
      add(list, instruction.a)
      add(list, instruction.b)
    } else list.push(pc)
  }
  add(current, 0)
  for (let i = 0; i < uri.length && current.length > 0; i++) {
    const c = uri.charCodeAt(i)
    generation++
    for (const pc of current) {
      const instruction = program[pc] as Instruction
      if ((instruction.op === 'char' && instruction.c === c) || (instruction.op === 'class' && instruction.test(c))) add(next, pc + 1)
    }
    ;[current, next] = [next, current]
    next.length = 0
  }
  return current.some(pc => (program[pc] as Instruction).op === 'match')
}
